"""Settings of ``meshguard webhook serve``: flags with ``MESHGUARD_*`` environment fallbacks."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from meshguard.common.settings import add_flag, fraction

DEFAULT_MAX_BODY = 4 * 1024 * 1024  # an object is at most ~1.5MB; UPDATE carries two


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookSettings:
    tls_cert: Path
    tls_key: Path
    port: int
    admin_port: int
    host: str
    max_body_bytes: int
    tls_poll_interval: float
    log_level: str
    log_allow_sample: float = 0.0
    log_deny_sample: float = 1.0
    reject_unknown_fields: bool = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--tls-cert", help="serving certificate chain (PEM); reloaded on change")
    add_flag(parser, "--tls-key", help="serving private key (PEM); reloaded on change")
    add_flag(parser, "--port", type=int, default=9443, help="HTTPS port of /validate")
    add_flag(parser, "--admin-port", type=int, default=9090,
             help="plain HTTP port of /healthz /readyz /metrics")  # fmt: skip
    add_flag(parser, "--host", default="0.0.0.0", help="address to listen on")
    add_flag(parser, "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY,
             help="larger review bodies are refused with 413")  # fmt: skip
    add_flag(parser, "--tls-poll-interval", type=float, default=1.0,
             help="seconds between checks of the certificate files")  # fmt: skip
    add_flag(parser, "--log-level", default="info", help="debug, info, warning or error")
    add_flag(parser, "--log-allow-sample", type=fraction, default=0.0,
             help="share of allowed reviews logged at info (all of them at debug)")  # fmt: skip
    add_flag(parser, "--log-deny-sample", type=fraction, default=1.0,
             help="share of denied reviews logged at info (all of them at debug)")  # fmt: skip
    add_flag(parser, "--reject-unknown-fields", boolean=True, default=True,
             help="deny fields the CRD schema does not know; off: warn, as Istio")  # fmt: skip


def from_args(args: argparse.Namespace) -> WebhookSettings:
    if not args.tls_cert or not args.tls_key:
        raise SystemExit("meshguard webhook serve needs --tls-cert and --tls-key (TLS only)")
    return WebhookSettings(
        tls_cert=Path(args.tls_cert),
        tls_key=Path(args.tls_key),
        port=args.port,
        admin_port=args.admin_port,
        host=args.host,
        max_body_bytes=args.max_body_bytes,
        tls_poll_interval=args.tls_poll_interval,
        log_level=args.log_level,
        log_allow_sample=args.log_allow_sample,
        log_deny_sample=args.log_deny_sample,
        reject_unknown_fields=args.reject_unknown_fields,
    )
