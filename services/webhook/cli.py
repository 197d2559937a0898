"""``meshguard webhook serve`` (the validating admission webhook) and ``meshguard analyze``."""

from __future__ import annotations

import argparse
import asyncio

from meshguard.common import logs
from meshguard.common.tls import TlsError
from meshguard.registry import default_registry
from meshguard.webhook import analyze_command, settings
from meshguard.webhook.injection import settings as injection_settings
from meshguard.webhook.server import build_runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhook = sub.add_parser("webhook", help="admission webhook for mesh configuration")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", metavar="COMMAND")
    serve = webhook_sub.add_parser(
        "serve",
        help="serve POST /validate (AdmissionReview v1) over TLS",
        description="Validating webhook for Istio and meshguard resources: denies invalid "
        "objects with every error and its field path, returns warnings, allows DELETE and "
        "kinds it does not know. The TLS files are reloaded when they change.",
    )
    settings.add_arguments(serve)
    injection_settings.add_arguments(serve)
    serve.set_defaults(handler=_serve)
    analyze_command.register(sub)


def _serve(args: argparse.Namespace) -> int:
    config = settings.from_args(args)
    logs.configure(config.log_level)
    try:
        injection = injection_settings.from_args(args)
        runtime = build_runtime(config, default_registry(), injection)
    except TlsError as exc:
        raise SystemExit(f"meshguard webhook serve: {exc}") from exc
    asyncio.run(runtime.run())
    return 0
