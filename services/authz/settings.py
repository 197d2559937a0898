"""Every setting of ``meshguard authz serve`` in one place, from flags or ``MESHGUARD_*`` env."""

from __future__ import annotations

import argparse
import dataclasses

from meshguard.common import eventloop
from meshguard.common.settings import add_flag, fraction, repeated


@dataclasses.dataclass(frozen=True, slots=True)
class AuthzSettings:
    policies: tuple[str, ...]
    host: str
    grpc_port: int
    http_port: int | None
    http_path_prefix: str
    admin_port: int
    root_namespace: str
    trust_domain: str
    trust_domain_aliases: tuple[str, ...]
    xff_trusted_hops: int
    log_allow_sample: float
    log_deny_sample: float
    jwks_refresh_interval: float
    event_loop: str = "auto"
    grpc_server: str = "lean"  # "lean" (meshguard.common.leangrpc) or "grpcio" (grpc.aio)


GRPC_SERVERS = ("lean", "grpcio")


def _grpc_server(text: str) -> str:
    if text not in GRPC_SERVERS:
        raise ValueError(f"gRPC server must be one of {', '.join(GRPC_SERVERS)}, got {text}")
    return text


def add_policy_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``serve`` and ``explain``: where policies are and how they compile."""
    add_flag(
        parser,
        "--policies",
        repeatable=True,
        help="AuthorizationPolicy/RequestAuthentication file or directory (repeatable)",
    )
    add_flag(parser, "--root-namespace", default="istio-system", help="mesh root namespace")
    add_flag(parser, "--trust-domain", default="cluster.local", help="mesh trust domain")
    add_flag(
        parser,
        "--trust-domain-alias",
        repeatable=True,
        help="trust domain alias principals also match (repeatable)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_flags(parser)
    add_flag(parser, "--host", default="0.0.0.0", help="address to listen on")
    add_flag(parser, "--grpc-port", type=int, default=9000, help="ext_authz v3 gRPC port")
    add_flag(
        parser,
        "--http-port",
        type=int,
        default=None,
        help="HTTP ext_authz flavour port (disabled when unset)",
    )
    add_flag(parser, "--http-path-prefix", default="", help="path prefix Envoy prepends (HTTP)")
    add_flag(parser, "--admin-port", type=int, default=9001, help="health, metrics, /config")
    add_flag(
        parser,
        "--xff-trusted-hops",
        type=int,
        default=0,
        help="x-forwarded-for entries to skip from the right when deriving remote.ip",
    )
    add_flag(
        parser, "--log-allow-sample", type=fraction, default=0.0, help="share of allows logged"
    )
    add_flag(parser, "--log-deny-sample", type=fraction, default=1.0, help="share of denies logged")
    add_flag(
        parser,
        "--jwks-refresh-interval",
        type=float,
        default=1200.0,
        help="seconds between jwksUri refreshes",
    )
    eventloop.add_flag(parser)
    add_flag(
        parser,
        "--grpc-server",
        default="lean",
        type=_grpc_server,
        help="lean (unary h2c server, far less CPU per call) or grpcio (adds reflection)",
    )


def from_args(args: argparse.Namespace) -> AuthzSettings:
    policies = repeated(args, "policies")
    if not policies:
        raise SystemExit("--policies is required (file or directory; repeatable)")
    if args.xff_trusted_hops < 0:
        raise SystemExit("--xff-trusted-hops must be >= 0")
    return AuthzSettings(
        policies=tuple(policies),
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        http_path_prefix=args.http_path_prefix,
        admin_port=args.admin_port,
        root_namespace=args.root_namespace,
        trust_domain=args.trust_domain,
        trust_domain_aliases=tuple(repeated(args, "trust_domain_alias")),
        xff_trusted_hops=args.xff_trusted_hops,
        log_allow_sample=args.log_allow_sample,
        log_deny_sample=args.log_deny_sample,
        jwks_refresh_interval=args.jwks_refresh_interval,
        event_loop=args.event_loop,
        grpc_server=args.grpc_server,
    )
