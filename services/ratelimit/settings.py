"""Every setting of the rate-limit service in one place: flag, ``MESHGUARD_*`` variable, and the
reference's own variable name where one exists (so an envoyproxy/ratelimit Deployment's env
keeps working)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from meshguard.common import eventloop
from meshguard.common.settings import add_flag, repeated
from meshguard.ratelimit.config import CompileOptions
from meshguard.ratelimit.limiter import cache_entries
from meshguard.ratelimit.redis_store import RedisSettings
from meshguard.ratelimit.service import ServiceOptions

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def duration(text: str) -> float:
    """Seconds from a Go duration (``150us``, ``20ms``, ``1m30s``) or a plain number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


GRPC_SERVERS = ("lean", "grpcio")


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitSettings:
    config_paths: tuple[str, ...]
    backend: str
    redis: RedisSettings
    per_second_redis: RedisSettings | None  # REDIS_PERSECOND: SECOND-unit counters go here
    service: ServiceOptions
    compile: CompileOptions
    host: str
    grpc_port: int
    http_port: int
    admin_port: int
    fail_open: bool
    grpc_server: str  # "lean" (meshguard.common.leangrpc) or "grpcio" (grpc.aio, reflection)
    memory_max_keys: int
    log_level: str
    event_loop: str


def add_arguments(
    parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None
) -> None:
    def flag(name: str, **kwargs: object) -> None:
        add_flag(parser, name, environ=environ, **kwargs)  # type: ignore[arg-type]

    flag("--config", repeatable=True, help="config file or directory (repeatable)")
    flag("--backend", default="memory", env_aliases=["BACKEND_TYPE"], help="memory or redis")
    flag("--host", default="0.0.0.0", env_aliases=["GRPC_HOST"], help="address to listen on")
    flag("--grpc-port", type=int, default=8081, env_aliases=["GRPC_PORT"], help="RLS gRPC port")
    flag("--http-port", type=int, default=8080, env_aliases=["PORT"], help="/json, /rlconfig port")
    flag("--admin-port", type=int, default=6070, env_aliases=["DEBUG_PORT"], help="admin port")
    flag(
        "--grpc-server",
        default="lean",
        help="lean (unary h2c server, far less CPU per call) or grpcio (adds reflection)",
    )
    flag("--redis-url", default="127.0.0.1:6379", env_aliases=["REDIS_URL"], help="Redis address")
    flag(
        "--redis-type", default="single", env_aliases=["REDIS_TYPE"], help="single|sentinel|cluster"
    )
    flag("--redis-auth", env_aliases=["REDIS_AUTH"], help="password or user:password")
    flag("--redis-sentinel-auth", env_aliases=["REDIS_SENTINEL_AUTH"], help="Sentinel password")
    flag("--redis-tls", boolean=True, default=False, env_aliases=["REDIS_TLS"], help="TLS to Redis")
    flag("--redis-tls-cacert", env_aliases=["REDIS_TLS_CACERT"], help="CA bundle for Redis TLS")
    flag("--redis-tls-client-cert", env_aliases=["REDIS_TLS_CLIENT_CERT"], help="client cert")
    flag("--redis-tls-client-key", env_aliases=["REDIS_TLS_CLIENT_KEY"], help="client key")
    flag(
        "--redis-tls-skip-hostname-verification",
        boolean=True,
        default=False,
        env_aliases=["REDIS_TLS_SKIP_HOSTNAME_VERIFICATION"],
        help="do not check the Redis certificate's host name",
    )
    flag("--redis-timeout", type=duration, default=0.015, help="per-call Redis budget")
    flag(
        "--redis-pipeline-window",
        type=duration,
        default=0.0,
        env_aliases=["REDIS_PIPELINE_WINDOW"],
        help="coalesce concurrent calls' writes for this long (0 = one event-loop turn)",
    )
    flag(
        "--redis-persecond",
        boolean=True,
        default=False,
        env_aliases=["REDIS_PERSECOND"],
        help="keep SECOND-unit counters in a second Redis",
    )
    flag("--redis-persecond-url", env_aliases=["REDIS_PERSECOND_URL"], help="its address")
    flag(
        "--redis-persecond-type",
        default="single",
        env_aliases=["REDIS_PERSECOND_TYPE"],
        help="single|sentinel|cluster",
    )
    flag("--redis-persecond-auth", env_aliases=["REDIS_PERSECOND_AUTH"], help="its password")
    flag(
        "--redis-persecond-sentinel-auth",
        env_aliases=["REDIS_PERSECOND_SENTINEL_AUTH"],
        help="its Sentinel password",
    )
    flag(
        "--redis-persecond-tls",
        boolean=True,
        default=False,
        env_aliases=["REDIS_PERSECOND_TLS"],
        help="TLS to the per-second Redis (same CA and client certificate settings)",
    )
    flag(
        "--redis-persecond-pipeline-window",
        type=duration,
        default=0.0,
        env_aliases=["REDIS_PERSECOND_PIPELINE_WINDOW"],
        help="its write-coalescing window",
    )
    flag("--fail-open", boolean=True, default=False, help="answer OK when Redis is down")
    flag("--shadow-mode", boolean=True, default=False, env_aliases=["SHADOW_MODE"], help="")
    flag("--quota-mode", boolean=True, default=False, env_aliases=["QUOTA_MODE"], help="")
    flag(
        "--merge-domain-config",
        boolean=True,
        default=False,
        env_aliases=["MERGE_DOMAIN_CONFIG"],
        help="let several files add to one domain",
    )
    flag(
        "--stop-increment-when-over-limit",
        boolean=True,
        default=False,
        env_aliases=["STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT"],
        help="do not consume other budgets of a denied call",
    )
    flag(
        "--response-headers",
        boolean=True,
        default=False,
        env_aliases=["LIMIT_RESPONSE_HEADERS_ENABLED"],
        help="add RateLimit-* response headers",
    )
    flag("--limit-header", default="RateLimit-Limit", env_aliases=["LIMIT_LIMIT_HEADER"], help="")
    flag(
        "--remaining-header",
        default="RateLimit-Remaining",
        env_aliases=["LIMIT_REMAINING_HEADER"],
        help="",
    )
    flag("--reset-header", default="RateLimit-Reset", env_aliases=["LIMIT_RESET_HEADER"], help="")
    flag(
        "--dynamic-metadata",
        boolean=True,
        default=False,
        env_aliases=["RESPONSE_DYNAMIC_METADATA"],
        help="return dynamic metadata",
    )
    flag("--near-limit-ratio", type=float, default=0.8, env_aliases=["NEAR_LIMIT_RATIO"], help="")
    flag("--cache-key-prefix", default="", env_aliases=["CACHE_KEY_PREFIX"], help="")
    flag(
        "--expiration-jitter-max-seconds",
        type=int,
        default=300,
        env_aliases=["EXPIRATION_JITTER_MAX_SECONDS"],
        help="",
    )
    flag(
        "--local-cache-size-in-bytes",
        type=int,
        default=0,
        env_aliases=["LOCAL_CACHE_SIZE_IN_BYTES"],
        help="over-limit cache budget in bytes (0 = off)",
    )
    flag(
        "--local-cache-entries",
        type=int,
        default=0,
        help="over-limit cache size as an entry count (wins over the byte budget)",
    )
    flag("--memory-max-keys", type=int, default=1_000_000, help="memory backend table size")
    flag("--log-level", default="info", env_aliases=["LOG_LEVEL"], help="log level")
    eventloop.add_flag(parser)


def reference_config_paths(environ: Mapping[str, str]) -> list[str]:
    """The reference's RUNTIME_ROOT / RUNTIME_SUBDIRECTORY / RUNTIME_APPDIRECTORY, if set."""
    root = environ.get("RUNTIME_ROOT")
    if not root:
        return []
    sub = environ.get("RUNTIME_SUBDIRECTORY", "")
    app = environ.get("RUNTIME_APPDIRECTORY", "config")
    return [str(Path(root) / sub / app)]


def from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> RateLimitSettings:
    env = os.environ if environ is None else environ
    paths = repeated(args, "config") or reference_config_paths(env)
    if args.grpc_server not in GRPC_SERVERS:
        raise ValueError(f"--grpc-server must be lean or grpcio, not {args.grpc_server!r}")
    if args.backend not in ("memory", "redis"):
        raise ValueError(f"--backend must be memory or redis, not {args.backend!r}")
    redis = RedisSettings(
        url=args.redis_url,
        type=args.redis_type,
        password=args.redis_auth,
        tls=args.redis_tls,
        tls_ca=args.redis_tls_cacert,
        tls_cert=args.redis_tls_client_cert,
        tls_key=args.redis_tls_client_key,
        tls_skip_hostname_verification=args.redis_tls_skip_hostname_verification,
        sentinel_password=args.redis_sentinel_auth,
        timeout=args.redis_timeout,
        pipeline_window=args.redis_pipeline_window,
    )
    per_second = None
    if args.redis_persecond:
        if not args.redis_persecond_url:
            raise ValueError("--redis-persecond needs --redis-persecond-url (REDIS_PERSECOND_URL)")
        per_second = dataclasses.replace(
            redis,
            url=args.redis_persecond_url,
            type=args.redis_persecond_type,
            password=args.redis_persecond_auth,
            sentinel_password=args.redis_persecond_sentinel_auth,
            tls=args.redis_persecond_tls,
            pipeline_window=args.redis_persecond_pipeline_window,
        )
    service = ServiceOptions(
        shadow_mode=args.shadow_mode,
        quota_mode=args.quota_mode,
        stop_increment_when_over_limit=args.stop_increment_when_over_limit,
        response_headers=args.response_headers,
        limit_header=args.limit_header,
        remaining_header=args.remaining_header,
        reset_header=args.reset_header,
        dynamic_metadata=args.dynamic_metadata,
        near_limit_ratio=args.near_limit_ratio,
        cache_key_prefix=args.cache_key_prefix,
        expiration_jitter_max_seconds=args.expiration_jitter_max_seconds,
        local_cache_entries=args.local_cache_entries
        or cache_entries(args.local_cache_size_in_bytes),
    )
    return RateLimitSettings(
        config_paths=tuple(paths),
        backend=args.backend,
        redis=redis,
        per_second_redis=per_second,
        service=service,
        compile=CompileOptions(merge_domains=args.merge_domain_config),
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        admin_port=args.admin_port,
        fail_open=args.fail_open,
        grpc_server=args.grpc_server,
        memory_max_keys=args.memory_max_keys,
        log_level=args.log_level,
        event_loop=args.event_loop,
    )
