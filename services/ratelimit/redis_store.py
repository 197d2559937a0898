"""Counter stores on Redis, with the reference's key layout and one pipeline per call.

Per call, every counted descriptor sends ``INCRBY key addend`` and ``EXPIRE key ttl`` in one
pipeline (no MULTI: INCRBY is atomic, so replicas sharing a Redis never over-admit). The
standalone store uses :class:`LeanRedis` (coalesced writes, fail-fast); Sentinel and Cluster
deployments use redis-py's clients, grouping Cluster commands per slot and running the slots
concurrently.

The opt-in algorithms run as Lua scripts by ``EVALSHA``; a ``NOSCRIPT`` answer (a restarted or
failed-over Redis has an empty script cache) loads the scripts with ``SCRIPT LOAD`` and retries
once, so scripts never need to be preloaded.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from meshguard.ratelimit.algorithms import SCRIPT_SHAS, SCRIPTS
from meshguard.ratelimit.metrics import REDIS_LATENCY
from meshguard.ratelimit.model import BackendError
from meshguard.ratelimit.resp import LeanRedis, RedisError, ReplyError, encode
from meshguard.ratelimit.store import Increment, ScriptOp, StepReply


@dataclasses.dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where Redis is and how to talk to it (mirrors the reference's REDIS_* variables)."""

    url: str = "redis://127.0.0.1:6379"
    type: str = "single"  # single | sentinel | cluster (REDIS_TYPE)
    password: str | None = None  # REDIS_AUTH: "password" or "user:password"
    tls: bool = False  # REDIS_TLS
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_skip_hostname_verification: bool = False
    sentinel_password: str | None = None
    timeout: float = 0.015  # per call; well under Envoy's 20 ms
    pipeline_window: float = 0.0  # REDIS_PIPELINE_WINDOW (seconds); 0 = next loop turn


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    username: str | None
    password: str | None
    db: int
    tls: bool


def parse_address(url: str, settings: RedisSettings) -> Address:
    """``redis://[user:pass@]host:port/db``, ``rediss://`` (TLS), or plain ``host:port``."""
    if "://" not in url:
        url = ("rediss://" if settings.tls else "redis://") + url
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if settings.password:
        user, sep, secret = settings.password.partition(":")
        username, password = (user, secret) if sep else (None, settings.password)
    db = int(parts.path.strip("/") or 0)
    return Address(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        username,
        password,
        db,
        parts.scheme == "rediss" or settings.tls,
    )


def ssl_context(settings: RedisSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.tls_ca)
    if settings.tls_cert:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_skip_hostname_verification:
        context.check_hostname = False
    return context


def _commands(ops: Sequence[Increment]) -> list[bytes]:
    commands: list[bytes] = []
    for key, addend, ttl in ops:
        commands.append(encode("INCRBY", key, addend))
        commands.append(encode("EXPIRE", key, ttl))
    return commands


def _script_commands(ops: Sequence[ScriptOp]) -> list[bytes]:
    return [
        encode("EVALSHA", SCRIPT_SHAS[algorithm], 1, key, now_us, addend, window_us, limit)
        for algorithm, key, now_us, addend, window_us, limit in ops
    ]


def _step_reply(reply: Any) -> StepReply:
    allowed, first, second = reply
    return int(allowed), int(first), int(second)


class LeanRedisStore:
    """Standalone Redis (or a proxy in front of one) through :class:`LeanRedis`."""

    def __init__(self, client: LeanRedis) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> LeanRedisStore:
        address = parse_address(settings.url, settings)
        return cls(
            LeanRedis(
                address.host,
                address.port,
                username=address.username,
                password=address.password,
                db=address.db,
                ssl_context=ssl_context(settings) if address.tls else None,
                timeout=settings.timeout,
                window=settings.pipeline_window,
            )
        )

    @property
    def healthy(self) -> bool:
        return self.client.connected

    async def start(self) -> None:
        await self.client.connect()

    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        started = time.perf_counter()
        try:
            replies = await self.client.execute(_commands(ops))
        except RedisError as exc:
            raise BackendError(str(exc)) from exc
        REDIS_LATENCY.observe(time.perf_counter() - started)
        return [int(r) for r in replies[0::2]]  # type: ignore[arg-type]

    async def advance(self, ops: Sequence[ScriptOp]) -> list[StepReply]:
        started = time.perf_counter()
        commands = _script_commands(ops)
        try:
            try:
                replies = await self.client.execute(commands)
            except ReplyError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                await self.client.execute([encode("SCRIPT", "LOAD", s) for s in SCRIPTS.values()])
                replies = await self.client.execute(commands)
        except RedisError as exc:
            raise BackendError(str(exc)) from exc
        REDIS_LATENCY.observe(time.perf_counter() - started)
        return [_step_reply(r) for r in replies]

    async def read(self, keys: Sequence[str]) -> list[int]:
        try:
            replies = await self.client.execute([encode("GET", k) for k in keys])
        except RedisError as exc:
            raise BackendError(str(exc)) from exc
        return [int(r) if isinstance(r, bytes) else 0 for r in replies]

    async def close(self) -> None:
        await self.client.close()


class RedisPyStore:
    """Sentinel or Cluster through redis-py's asyncio clients."""

    def __init__(self, client: Any, *, cluster: bool) -> None:
        self.client = client
        self.cluster = cluster
        self._healthy = True

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisPyStore:
        from redis.asyncio import RedisCluster, Sentinel
        from redis.asyncio.cluster import ClusterNode

        seeds = [s.strip() for s in settings.url.split(",") if s.strip()]
        common: dict[str, Any] = {
            "socket_timeout": settings.timeout,
            "socket_connect_timeout": 1.0,
        }
        first = parse_address(seeds[-1], settings)
        if first.password is not None:
            common["password"] = first.password
            common["username"] = first.username
        if first.tls:
            common["ssl"] = True
            common["ssl_ca_certs"] = settings.tls_ca
            common["ssl_certfile"] = settings.tls_cert
            common["ssl_keyfile"] = settings.tls_key
            common["ssl_check_hostname"] = not settings.tls_skip_hostname_verification
        if settings.type == "cluster":
            nodes = [
                ClusterNode(a.host, a.port)
                for a in (parse_address(seed, settings) for seed in seeds)
            ]
            return cls(RedisCluster(startup_nodes=nodes, **common), cluster=True)
        if settings.type == "sentinel":
            if len(seeds) < 2:
                raise ValueError("sentinel REDIS_URL needs 'mastername,host:port[,host:port...]'")
            sentinels = [
                (a.host, a.port) for a in (parse_address(seed, settings) for seed in seeds[1:])
            ]
            sentinel_kwargs = (
                {"password": settings.sentinel_password} if settings.sentinel_password else {}
            )
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **common)  # type: ignore[no-untyped-call]
            return cls(sentinel.master_for(seeds[0]), cluster=False)
        raise ValueError(f"unknown redis type {settings.type!r}")

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        return None

    async def _run(self, build: Any) -> list[Any]:
        from redis.exceptions import RedisError as PyRedisError

        started = time.perf_counter()
        try:
            pipe = self.client.pipeline(transaction=False)
            build(pipe)
            result: list[Any] = await pipe.execute()
        except (PyRedisError, OSError) as exc:
            self._healthy = False
            raise BackendError(f"redis error: {exc}") from exc
        self._healthy = True
        REDIS_LATENCY.observe(time.perf_counter() - started)
        return result

    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        def build(pipe: Any) -> None:
            for key, addend, ttl in ops:
                pipe.incrby(key, addend)
                pipe.expire(key, ttl)

        replies = await self._run(build)
        return [int(r) for r in replies[0::2]]

    async def advance(self, ops: Sequence[ScriptOp]) -> list[StepReply]:
        """EVALSHA per op in one pipeline (Cluster runs each node's share concurrently); ops that
        met an empty script cache are retried alone after SCRIPT LOAD, so none runs twice."""
        from redis.exceptions import NoScriptError
        from redis.exceptions import RedisError as PyRedisError

        started = time.perf_counter()
        try:
            replies = await self._evalsha(ops)
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:
                for source in SCRIPTS.values():
                    await self.client.script_load(source)
                retried = await self._evalsha([ops[i] for i in missing])
                for index, reply in zip(missing, retried, strict=True):
                    replies[index] = reply
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        except (PyRedisError, OSError) as exc:
            self._healthy = False
            raise BackendError(f"redis error: {exc}") from exc
        self._healthy = True
        REDIS_LATENCY.observe(time.perf_counter() - started)
        return [_step_reply(r) for r in replies]

    async def _evalsha(self, ops: Sequence[ScriptOp]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for algorithm, key, *args in ops:
            # execute_command: redis-py's cluster pipeline blocks the evalsha() helper only.
            pipe.execute_command("EVALSHA", SCRIPT_SHAS[algorithm], 1, key, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def read(self, keys: Sequence[str]) -> list[int]:
        def build(pipe: Any) -> None:
            for key in keys:
                pipe.get(key)

        return [int(r) if r is not None else 0 for r in await self._run(build)]

    async def close(self) -> None:
        await self.client.aclose()
