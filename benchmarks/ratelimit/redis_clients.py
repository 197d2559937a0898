"""CPU per decision of the Redis clients on the limiter's hot path (2 descriptors per call).

Runs N concurrent callers, each sending INCRBY+EXPIRE for two keys per call, through redis-py's
asyncio pipeline and through meshguard's LeanRedis; prints calls/s, process CPU µs per call
and calls per write (coalescing). Usage: python redis_clients.py PORT [CALLS] [CONCURRENCY]
"""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as aioredis

from meshguard.ratelimit.redis_store import LeanRedisStore, RedisSettings


async def drive(call: object, calls: int, concurrency: int) -> tuple[float, float]:
    async def worker(n: int) -> None:
        for i in range(n):
            await call(i)  # type: ignore[operator]

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def main(port: int, calls: int, concurrency: int) -> None:
    client = aioredis.Redis(port=port)

    async def redis_py(i: int) -> None:
        pipe = client.pipeline(transaction=False)
        for k in (f"a_{i % 1000}", f"b_{i % 1000}"):
            pipe.incrby(k, 1)
            pipe.expire(k, 60)
        await pipe.execute()

    store = LeanRedisStore.from_settings(RedisSettings(url=f"127.0.0.1:{port}", timeout=1.0))
    await store.start()

    async def lean(i: int) -> None:
        await store.increment([(f"a_{i % 1000}", 1, 60), (f"b_{i % 1000}", 1, 60)])

    for name, call in (("redis-py", redis_py), ("lean", lean)):
        await drive(call, 2000, concurrency)  # warm-up
        writes = store.client.writes
        wall, cpu = await drive(call, calls, concurrency)
        line = f"{name:9s} {calls / wall:8.0f} calls/s  {cpu / calls * 1e6:6.1f} µs CPU/call"
        if name == "lean":
            line += f"  {calls / max(1, store.client.writes - writes):.1f} calls/write"
        print(line)
    await client.aclose()
    await store.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(args[0], *(args[1:] or [20000, 64])))
