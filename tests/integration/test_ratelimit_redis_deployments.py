"""Redis deployments beyond one plain server, for real: a per-second Redis, the local
over-limit cache skipping Redis, TLS with password and ACL auth, and Sentinel."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshguard.common.netutil import LOCALHOST, free_port
from meshguard.common.sources import SourceFile
from meshguard.common.tls import TlsFiles
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.model import BackendError, Code, Descriptor, Request
from meshguard.ratelimit.redis_store import LeanRedisStore, RedisPyStore, RedisSettings
from meshguard.ratelimit.service import RateLimitService, ServiceOptions
from tests.harness.redis import RedisFactory, RedisServer, redis_binary

CONFIG = """
domain: edge
descriptors:
  - key: per_second
    rate_limit: {unit: second, requests_per_unit: 100}
  - key: per_minute
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: gcra
    rate_limit: {unit: second, requests_per_unit: 5, algorithm: gcra}
  - key: per_day
    rate_limit: {unit: day, requests_per_unit: 1000}
"""


def service_on(store: Any, per_second: Any = None, **options: Any) -> RateLimitService:
    config = compile_sources([SourceFile("config.yaml", CONFIG)])
    return RateLimitService(
        lambda: config,
        store,
        ServiceOptions(expiration_jitter_max_seconds=0, **options),
        per_second_store=per_second,
    )


def both(*entries: tuple[str, str]) -> Request:
    return Request("edge", tuple(Descriptor((entry,)) for entry in entries))


async def lean(url: str, **settings: Any) -> LeanRedisStore:
    store = LeanRedisStore.from_settings(RedisSettings(url=url, timeout=1.0, **settings))
    await store.start()
    return store


async def test_second_unit_counters_go_to_the_per_second_redis(
    redis_factory: RedisFactory,
) -> None:
    main, fast = redis_factory(), redis_factory()
    main_store, fast_store = await lean(main.url), await lean(fast.url)
    service = service_on(main_store, fast_store)
    try:
        request = both(("per_second", "a"), ("per_minute", "a"), ("gcra", "a"))
        response = await service.should_rate_limit(request)
        assert [s.limit_remaining for s in response.statuses] == [99, 1, 4]
        main_keys = sorted(k.decode() for k in main.client().keys("*"))
        fast_keys = sorted(k.decode() for k in fast.client().keys("*"))
        assert [k.rsplit("_", 1)[0] for k in main_keys] == ["edge_per_minute_a"]
        assert fast_keys[0] == "edge_gcra_a_gcra_1s"
        assert fast_keys[1].startswith("edge_per_second_a_")
    finally:
        await main_store.close()
        await fast_store.close()


async def test_an_over_limit_key_is_answered_from_the_local_cache(
    redis_server: RedisServer,
) -> None:
    store = await lean(redis_server.url)
    service = service_on(store, local_cache_entries=100)
    request = both(("per_minute", "cached"))
    try:
        codes = [(await service.should_rate_limit(request)).overall_code for _ in range(3)]
        assert codes == [Code.OK, Code.OK, Code.OVER_LIMIT]
        pipelines = store.client.pipelines
        for _ in range(5):
            response = await service.should_rate_limit(request)
            assert response.overall_code is Code.OVER_LIMIT
            assert response.statuses[0].duration_until_reset is not None
        assert store.client.pipelines == pipelines  # no Redis round trip at all
        [key] = redis_server.client().keys("edge_per_minute_cached_*")
        assert redis_server.client().get(key) == b"3"  # the cached key stopped growing
        snapshot = service.stats.snapshot()
        prefix = "ratelimit.service.rate_limit.edge.per_minute."
        assert snapshot[prefix + "over_limit_with_local_cache"] == 5
        assert snapshot[prefix + "over_limit"] == 6
        assert snapshot["ratelimit.localcache.hitCount"] == 5
        assert snapshot["ratelimit.localcache.entryCount"] == 1
    finally:
        await store.close()


def acl_args(tls: TlsFiles | None = None) -> list[str]:
    # Command-line words after an option form its config line: "user limiter on ...".
    args = ["--requirepass", "s3cret", "--user", "limiter", "on", ">limiter-pw", "~*", "+@all"]
    if tls is not None:
        args += [
            "--port", "0",
            "--tls-port", str(free_port()),
            "--tls-cert-file", str(tls.cert),
            "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
    return args


async def test_tls_with_password_and_acl_user(tmp_path: Path, server_tls: TlsFiles) -> None:
    args = acl_args(server_tls)
    port = int(args[args.index("--tls-port") + 1])
    server = subprocess.Popen(
        [redis_binary(), "--bind", LOCALHOST, "--save", "", "--dir", str(tmp_path), *args],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"{LOCALHOST}:{port}"
        tls = {"tls": True, "tls_ca": str(server_tls.ca)}
        await wait_until_up(url, tls | {"password": "s3cret"})
        for auth in ("s3cret", "limiter:limiter-pw"):
            store = await lean(url, password=auth, **tls)
            try:
                assert store.healthy, store.client.last_error
                response = await service_on(store).should_rate_limit(both(("per_minute", auth)))
                assert response.statuses[0].limit_remaining == 1
            finally:
                await store.close()
        refused = await lean(url, password="wrong", **tls)
        assert not refused.healthy and "WRONGPASS" in (refused.client.last_error or "")
        await refused.close()
    finally:
        server.terminate()
        server.wait(5)


async def wait_until_up(url: str, settings: dict[str, Any]) -> None:
    deadline = time.monotonic() + 10
    while True:
        store = await lean(url, **settings)
        healthy = store.healthy
        await store.close()
        if healthy:
            return
        assert time.monotonic() < deadline, "TLS redis-server did not come up"
        time.sleep(0.05)


@pytest.fixture
def sentinel(redis_factory: RedisFactory, tmp_path: Path) -> Iterator[tuple[RedisServer, int]]:
    """A master with one replica, watched by one real Sentinel; yields (master, sentinel port)."""
    master = redis_factory()
    replica = redis_factory(extra_args=["--replicaof", LOCALHOST, str(master.port)])
    deadline = time.monotonic() + 10
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "replica never synced"
        time.sleep(0.05)
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind {LOCALHOST}\ndir {tmp_path}\n"
        f"sentinel monitor primary {LOCALHOST} {master.port} 1\n"
        "sentinel down-after-milliseconds primary 500\n"
        "sentinel failover-timeout primary 5000\n"
    )
    process = subprocess.Popen(
        [redis_binary(), str(conf), "--sentinel"],
        stdout=(tmp_path / "sentinel.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield master, port
    finally:
        process.terminate()
        process.wait(5)


async def test_sentinel_finds_the_master_and_follows_a_failover(
    sentinel: tuple[RedisServer, int],
) -> None:
    master, port = sentinel
    settings = RedisSettings(
        url=f"primary,{LOCALHOST}:{port},{LOCALHOST}:{free_port()}",  # one dead sentinel too
        type="sentinel",
        timeout=1.0,
    )
    store = RedisPyStore.from_settings(settings)
    service = service_on(store)
    request = both(("per_day", "s"), ("gcra", "s"))
    try:
        response = await eventually(service, request, "Sentinel never named the master")
        assert [s.limit_remaining for s in response.statuses] == [999, 4]
        assert master.client().exists("edge_gcra_s_gcra_1s") == 1
        master.kill()
        # The promoted replica has the counters but not the script cache: NOSCRIPT, reload.
        response = await eventually(service, request, "no recovery after the failover", 30)
        assert response.statuses[0].limit_remaining == 998  # the replica had the count
    finally:
        await store.close()


async def eventually(
    service: RateLimitService, request: Request, failure: str, seconds: float = 10
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await service.should_rate_limit(request)
        except BackendError:
            assert time.monotonic() < deadline, failure
            await asyncio.sleep(0.1)
