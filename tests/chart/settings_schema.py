"""``ratelimit.settings`` in values.schema.json, derived from ``meshguard ratelimit serve``'s flags.

Every serve flag the chart does not set itself is offered under ``ratelimit.settings`` with the
flag's type and help. ``python -m tests.chart.settings_schema`` rewrites that block (then run
``python -m tests.chart.values_table``); tests/chart/test_chart_cli_flags.py fails when they drift.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from meshguard.cli import build_parser
from tests.chart.helm import CHART

SCHEMA = CHART / "values.schema.json"

# Flags the chart sets from its own values (ports, config mount, Redis wiring, log level).
CHART_OWNED = frozenset(
    {
        "config",
        "backend",
        "host",
        "grpc-port",
        "http-port",
        "admin-port",
        "redis-url",
        "redis-type",
        "redis-auth",
        "redis-sentinel-auth",
        "redis-tls",
        "redis-tls-cacert",
        "redis-tls-client-cert",
        "redis-tls-client-key",
        "redis-tls-skip-hostname-verification",
        "log-level",
    }
)

# Descriptions for flags whose --help only names their environment variables.
_DESCRIPTIONS = {
    "shadow-mode": "Answer OK for every over-limit descriptor (counted, not enforced).",
    "quota-mode": "Treat limits marked quota_mode as quotas.",
    "limit-header": "Name of the limit response header.",
    "remaining-header": "Name of the remaining response header.",
    "reset-header": "Name of the reset response header.",
    "near-limit-ratio": "Share of a limit above which hits count as near_limit.",
    "cache-key-prefix": "Prefix of every Redis key.",
    "expiration-jitter-max-seconds": "Random extra TTL on counters, up to this many seconds.",
}


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub: argparse.ArgumentParser = action.choices[name]
    return sub


def serve_flags() -> dict[str, argparse.Action]:
    serve = _subparser(_subparser(build_parser(), "ratelimit"), "serve")
    return {
        a.option_strings[0][2:]: a for a in serve._actions if a.option_strings and a.dest != "help"
    }


def _type(action: argparse.Action) -> str | list[str]:
    if isinstance(action, argparse.BooleanOptionalAction):
        return "boolean"
    if action.type is float:
        return "number"
    if action.type is int:
        return "integer"
    if action.type in (str, None):
        return "string"
    return ["string", "number"]  # parsed by the service, e.g. durations ("20ms" or 0.02)


def _description(name: str, action: argparse.Action) -> str:
    text = re.sub(r"\s*\(env [^)]*\)\s*$", "", action.help or "").strip()
    return f"{text[0].upper()}{text[1:]}." if text else _DESCRIPTIONS[name]


def settings_properties() -> dict[str, Any]:
    return {
        name: {"type": _type(action), "description": _description(name, action)}
        for name, action in serve_flags().items()
        if name not in CHART_OWNED
    }


def write() -> None:
    schema = json.loads(SCHEMA.read_text())
    schema["properties"]["ratelimit"]["properties"]["settings"]["properties"] = (
        settings_properties()
    )
    SCHEMA.write_text(json.dumps(schema, indent=2) + "\n")


if __name__ == "__main__":
    write()
