"""Checks on the object envelope that Istio runs before the per-kind validator."""

from __future__ import annotations

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook.fields import Report

DRY_RUN = "istio.io/dry-run"
INTERNAL_PREFIX = "internal.istio.io/"
TOP_LEVEL_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


def check_metadata(resource: Resource, report: Report, *, dry_run_allowed: bool = False) -> None:
    """Reserved annotations and unexpected top-level keys.

    ``istio.io/dry-run`` is only meaningful on AuthorizationPolicy, whose validator passes
    ``dry_run_allowed`` and checks the value itself.
    """
    annotations = resource.metadata.annotations
    if DRY_RUN in annotations and not dry_run_allowed:
        report.error(
            f"metadata.annotations[{DRY_RUN}]",
            f"the {DRY_RUN} annotation is only supported on AuthorizationPolicy",
        )
    for name in annotations:
        if name.startswith(INTERNAL_PREFIX):
            report.error(
                f"metadata.annotations[{name}]",
                f"{INTERNAL_PREFIX}* annotations are reserved for Istio and cannot be set",
            )
    for key in resource.raw:
        if key not in TOP_LEVEL_KEYS:
            report.error(
                str(key),
                "unexpected top-level field (allowed: apiVersion, kind, metadata, spec, status)",
            )


def metadata_findings(resource: Resource, *, dry_run_allowed: bool = False) -> list[Finding]:
    """The same checks for validators that collect findings in a plain list (authz's)."""
    report = Report()
    check_metadata(resource, report, dry_run_allowed=dry_run_allowed)
    return report.findings
