"""DestinationRule validation (reference section 4.2)."""

from __future__ import annotations

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.fields import Node, Report
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import check_export_to, check_labels, check_selector
from meshguard.webhook.trafficpolicy import check_traffic_policy


def validate_destination_rule(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    namespace = resource.metadata.namespace
    spec = Node(resource.spec, "spec", report)
    host = spec.text("host")
    if host is not None:
        problem = hosts.wildcard_domain_error(host)
        if problem:
            spec.error("host", problem)
    policy = spec.child("trafficPolicy")
    if policy is not None:
        check_traffic_policy(policy, namespace)
    _check_subsets(spec, namespace)
    check_export_to(spec, namespace)
    check_selector(spec, "workloadSelector", "matchLabels")
    if spec.has("workloadSelector"):
        for path, value in spec.strings("exportTo"):
            if value not in (".", namespace):
                report.error(
                    path,
                    "a DestinationRule with workloadSelector can only be exported to its own "
                    f"namespace, got {value!r}",
                )
    return report.findings


def _check_subsets(spec: Node, namespace: str) -> None:
    names: set[str] = set()
    for _, subset in spec.children("subsets"):
        name = subset.text("name")
        if not name:
            subset.error("name", "subset name is required")
        elif not hosts.is_lower_label(name):
            subset.error("name", f"subset name {name!r} must be a DNS-1123 label")
        elif name in names:
            subset.error("name", f"duplicate subset name {name!r}")
        if name:
            names.add(name)
        check_labels(subset, "labels")
        policy = subset.child("trafficPolicy")
        if policy is not None:
            # Istio drops the warnings of subset-level policies; keep only the errors.
            scratch = Report()
            check_traffic_policy(Node(policy.data, policy.path, scratch), namespace)
            spec.report.extend([f for f in scratch.findings if f.is_error])
