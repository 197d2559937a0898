"""``meshguard ca serve``: the mesh CA process."""

from __future__ import annotations

import argparse
import asyncio

from meshguard.common import logs
from meshguard.webhook.ca import settings
from meshguard.webhook.ca.runtime import build_runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ca = sub.add_parser("ca", help="mesh certificate authority")
    ca_sub = ca.add_subparsers(dest="ca_command", metavar="COMMAND")
    serve = ca_sub.add_parser(
        "serve",
        help="sign workload certificates for verified ServiceAccount tokens",
        description="gRPC CertificateService (protos/meshguard/ca/v1/ca.proto) over TLS; the "
        "SPIFFE ID comes from the verified token, never from the CSR.",
    )
    settings.add_arguments(serve)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    runtime = build_runtime(settings.from_args(args))
    asyncio.run(runtime.run())
    return 0
