"""``meshguard version`` and ``meshguard validate PATH...``."""

from __future__ import annotations

import argparse
import json
import sys

from meshguard import __version__
from meshguard.common.findings import Finding, has_errors
from meshguard.common.resources import read_paths
from meshguard.registry import default_registry
from meshguard.webhook.schema import uncovered_cel_findings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    version = sub.add_parser("version", help="print the meshguard version")
    version.set_defaults(handler=_version)

    validate = sub.add_parser(
        "validate",
        help="validate Istio and meshguard resources in YAML files or directories",
        description="Runs the same validators as the webhook and the service loaders. "
        "Prints file:doc:path: severity: message; exits 1 when any error is found.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="file, directory or -")
    validate.add_argument("--output", choices=["text", "json"], default="text")
    validate.set_defaults(handler=_validate)


def _version(args: argparse.Namespace) -> int:
    print(f"meshguard {__version__}")
    return 0


def validate_paths(paths: list[str]) -> list[Finding]:
    """Every finding for the resources under ``paths``: unreadable files and parse errors, and
    the validators' findings for every resource that did parse."""
    resources, problems = read_paths(paths)
    registry = default_registry()
    found = list(problems)
    for resource in resources:
        own = registry.validate(resource)
        found.extend(own)
        found.extend(resource.locate(f) for f in uncovered_cel_findings(resource, own))
    return found


def _validate(args: argparse.Namespace) -> int:
    findings = validate_paths(args.paths)
    if args.output == "json":
        json.dump([_as_json(f) for f in findings], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for f in findings:
            print(f)
    return 1 if has_errors(findings) else 0


def _as_json(f: Finding) -> dict[str, object]:
    return {
        "file": f.file,
        "doc": f.doc,
        "path": f.path,
        "severity": str(f.severity),
        "message": f.message,
    }
