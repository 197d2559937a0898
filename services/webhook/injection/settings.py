"""Injection settings from flags or ``MESHGUARD_INJECT_*`` env, mirrored by the chart's values.

``meshguard inject`` uses them, and so does ``meshguard webhook serve`` for ``/mutate`` (see
:class:`meshguard.webhook.server.WebhookHttp`).
"""

from __future__ import annotations

import argparse

from meshguard.common.settings import add_flag
from meshguard.webhook.injection.config import InjectionConfig

_DEFAULTS = InjectionConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--inject-proxy-image",
        default=_DEFAULTS.proxy_image,
        help="sidecar image (Envoy + meshguard + iptables)",
    )
    add_flag(
        parser,
        "--inject-policy",
        default=_DEFAULTS.policy,
        help="'enabled' or 'disabled': pods that do not say",
    )
    add_flag(
        parser,
        "--inject-mtls-mode",
        default=_DEFAULTS.mtls_mode,
        help="STRICT or PERMISSIVE unless the pod says",
    )
    add_flag(parser, "--inject-trust-domain", default=_DEFAULTS.trust_domain, help="trust domain")
    add_flag(parser, "--inject-ca-address", default=_DEFAULTS.ca_address, help="mesh CA")
    add_flag(
        parser,
        "--inject-authz-address",
        default=_DEFAULTS.authz_address,
        help="meshguard authz gRPC host:port",
    )
    add_flag(
        parser,
        "--inject-ratelimit-address",
        default=_DEFAULTS.ratelimit_address,
        help="meshguard ratelimit gRPC host:port",
    )
    add_flag(
        parser,
        "--inject-ratelimit-domain",
        default=_DEFAULTS.ratelimit_domain,
        help="rate-limit domain of sidecars",
    )


def from_args(args: argparse.Namespace) -> InjectionConfig:
    if args.inject_mtls_mode not in ("STRICT", "PERMISSIVE"):
        raise SystemExit(
            f"--inject-mtls-mode must be STRICT or PERMISSIVE, not {args.inject_mtls_mode!r}"
        )
    return InjectionConfig(
        proxy_image=args.inject_proxy_image,
        policy=args.inject_policy,
        mtls_mode=args.inject_mtls_mode,
        trust_domain=args.inject_trust_domain,
        ca_address=args.inject_ca_address,
        authz_address=args.inject_authz_address,
        ratelimit_address=args.inject_ratelimit_address,
        ratelimit_domain=args.inject_ratelimit_domain,
    )
