"""The ``meshguard`` command: one entry point, a subcommand per job.

Each service contributes its subcommands through a ``register(subparsers)`` function in its own
``cli`` module; this file only assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from meshguard import __version__, validate_command
from meshguard.authz import cli as authz_cli
from meshguard.ratelimit import cli as ratelimit_cli
from meshguard.stack import command as stack_command
from meshguard.webhook import cli as webhook_cli
from meshguard.webhook.agent import cli as agent_cli
from meshguard.webhook.ca import cli as ca_cli
from meshguard.webhook.injection import cli as inject_cli

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    # Each service adds its ``register`` here.
    return [
        validate_command.register,
        stack_command.register,
        ca_cli.register,
        agent_cli.register,
        inject_cli.register,
        ratelimit_cli.register,
        authz_cli.register,
        webhook_cli.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshguard",
        description="ext_authz, global rate limiting and admission webhook for Envoy / Istio",
    )
    parser.add_argument("--version", action="version", version=f"meshguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrations():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    result = handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
