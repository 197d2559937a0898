"""``meshguard ratelimit serve`` and ``meshguard ratelimit check``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from prometheus_client import REGISTRY

from meshguard.common import eventloop, logs
from meshguard.common.configstore import ConfigStore
from meshguard.common.findings import FindingsError
from meshguard.common.server import ServiceRuntime
from meshguard.common.sources import SourceFile, discover, read
from meshguard.ratelimit import grpc_api, http_api
from meshguard.ratelimit.config import CompileOptions, RateLimitConfig, compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.metrics import StatsCollector
from meshguard.ratelimit.redis_store import LeanRedisStore, RedisPyStore, RedisSettings
from meshguard.ratelimit.service import RateLimitService
from meshguard.ratelimit.settings import RateLimitSettings, add_arguments, from_args
from meshguard.ratelimit.stats import Stats

log = logging.getLogger("meshguard.ratelimit")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ratelimit", help="Envoy global rate-limit service (RLS v3)")
    commands = parser.add_subparsers(dest="ratelimit_command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser("serve", help="serve ShouldRateLimit, /json and metrics")
    add_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve)
    check_parser = commands.add_parser(
        "check", help="validate a config directory the way the service loads it"
    )
    check_parser.add_argument("--config", action="append", required=True, help="file or dir")
    check_parser.add_argument(
        "--merge-domain-config", action="store_true", help="as MERGE_DOMAIN_CONFIG=true"
    )
    check_parser.set_defaults(handler=check)


def compiler(options: CompileOptions, stats: Stats | None = None) -> Any:
    """The ConfigStore compile function; counts the reference's config_load_* stats."""

    def compile_files(files: list[SourceFile]) -> RateLimitConfig:
        try:
            config = compile_sources(files, options)
        except FindingsError:
            if stats is not None:
                stats.service["config_load_error"] += 1
            raise
        if stats is not None:
            stats.service["config_load_success"] += 1
        return config

    return compile_files


def check(args: argparse.Namespace) -> int:
    try:
        files = read(discover(args.config, None))
        config = compile_sources(files, CompileOptions(merge_domains=args.merge_domain_config))
    except FindingsError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read config: {exc}", file=sys.stderr)
        return 1
    limits = config.dump().count("\n")
    print(f"ok: {len(files)} file(s), {len(config.domains)} domain(s), {limits} limit(s)")
    return 0


def serve(args: argparse.Namespace) -> int:
    settings = from_args(args)
    logs.configure(settings.log_level)
    if not settings.config_paths:
        print("meshguard ratelimit serve: --config is required", file=sys.stderr)
        return 2
    return eventloop.run(run(settings), settings.event_loop)


Store = MemoryStore | LeanRedisStore | RedisPyStore


def redis_store(settings: RedisSettings) -> LeanRedisStore | RedisPyStore:
    if settings.type == "single":
        return LeanRedisStore.from_settings(settings)
    return RedisPyStore.from_settings(settings)


def make_stores(settings: RateLimitSettings) -> tuple[Store, Store | None]:
    """The counter store, and the per-second one when REDIS_PERSECOND is on."""
    if settings.backend == "memory":
        return MemoryStore(max_keys=settings.memory_max_keys), None
    second = settings.per_second_redis
    return redis_store(settings.redis), redis_store(second) if second is not None else None


async def run(settings: RateLimitSettings) -> int:
    stats = Stats()
    configs: ConfigStore[RateLimitConfig] = ConfigStore(
        "ratelimit", settings.config_paths, compiler(settings.compile, stats), suffixes=None
    )
    try:
        configs.load()
    except FindingsError as exc:
        for finding in exc.findings:
            log.error("invalid rate limit config: %s", finding)
        return 1
    store, per_second = make_stores(settings)
    for started in (store, per_second):
        if started is not None and not isinstance(started, MemoryStore):
            await started.start()
    service = RateLimitService(
        lambda: configs.current.value,
        store,
        settings.service,
        stats,
        per_second_store=per_second,
    )
    runtime = ServiceRuntime("ratelimit", admin_port=settings.admin_port, host=settings.host)
    if settings.grpc_server == "lean":
        methods = grpc_api.lean_methods(service, fail_open=settings.fail_open)
        runtime.add_lean_grpc(settings.grpc_port, methods, [grpc_api.SERVICE_NAME])
    else:
        runtime.add_grpc(
            settings.grpc_port,
            grpc_api.register(service, fail_open=settings.fail_open),
            [grpc_api.SERVICE_NAME],
        )
    app = http_api.build_app(
        service,
        lambda: configs.current.value,
        healthy=lambda: all(getattr(s, "healthy", True) for s in (store, per_second)),
        fail_open=settings.fail_open,
    )
    runtime.add_http(app, settings.http_port)
    runtime.add_store(configs)
    collector = StatsCollector(stats)
    REGISTRY.register(collector)
    try:
        await runtime.run()
    finally:
        REGISTRY.unregister(collector)
        await store.close()
        if per_second is not None:
            await per_second.close()
    return 0
