"""``meshguard analyze PATH...``: per-object findings plus the cross-resource analyzers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable

from meshguard.common.findings import Severity, error
from meshguard.common.resources import Resource, read_paths
from meshguard.common.validation import ValidatorRegistry
from meshguard.registry import default_registry
from meshguard.webhook.analysis import (
    CODES,
    Diagnostic,
    Inventory,
    object_diagnostics,
    parse_diagnostics,
)
from meshguard.webhook.analyzers import ANALYZERS


def analyze(resources: Iterable[Resource], registry: ValidatorRegistry) -> list[Diagnostic]:
    resources = list(resources)
    found = list(object_diagnostics(resources, registry))
    inventory = Inventory(resources)
    for analyzer in ANALYZERS:
        found.extend(analyzer(inventory))
    return found


def analyze_paths(paths: list[str], registry: ValidatorRegistry) -> list[Diagnostic]:
    try:
        resources, problems = read_paths(paths)
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        return list(parse_diagnostics([error("", str(exc))]))
    return list(parse_diagnostics(problems)) + analyze(resources, registry)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "analyze",
        help="cross-resource analysis of mesh manifests (MG0xxx codes)",
        description="Validates each object like the webhook, then checks resources against "
        "each other (subsets, gateways, selectors, conflicts). Exits 1 when an error (or, with "
        "--fail-on warning, a warning) is found.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="file, directory or -")
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.add_argument("--fail-on", choices=["error", "warning"], default="error")
    parser.add_argument("--list-codes", action="store_true", help="print the code table")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list_codes:
        for code in CODES.values():
            print(
                f"{code.code}  {code.severity.name:7}  {code.istio:7}  {code.name}: {code.summary}"
            )
        return 0
    if not args.paths:
        print("meshguard analyze: give at least one PATH (or -)", file=sys.stderr)
        return 2
    found = analyze_paths(args.paths, default_registry())
    if args.output == "json":
        json.dump([d.as_json() for d in found], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for diagnostic in found:
            print(diagnostic)
    failing = {Severity.ERROR} | ({Severity.WARNING} if args.fail_on == "warning" else set())
    return 1 if any(d.level in failing for d in found) else 0
