"""PeerAuthentication validation (reference section 4.7)."""

from __future__ import annotations

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook.fields import Node, Report, as_int
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import check_selector, port_error

MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


def validate_peer_authentication(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    spec = Node(resource.spec, "spec", report)
    check_selector(spec, "selector", "matchLabels")
    _check_mode(spec.child("mtls"))
    ports = spec.child("portLevelMtls")
    if ports is None:
        return report.findings
    selector = spec.child("selector")
    if selector is None or not selector.string_map("matchLabels"):
        spec.error(
            "portLevelMtls",
            "portLevelMtls requires a selector with at least one label "
            "(namespace- and mesh-wide policies cannot have it)",
        )
    if not ports.data:
        spec.error("portLevelMtls", "portLevelMtls must not be empty when present")
    for key, value in ports.data.items():
        path = f"{ports.path}[{key}]"
        number = as_int(key)
        problem = port_error(number) if number is not None else f"{key!r} is not a port number"
        if problem:
            report.error(path, problem)
        if isinstance(value, dict):
            _check_mode(Node(value, path, report))
    return report.findings


def _check_mode(mtls: Node | None) -> None:
    if mtls is None:
        return
    mode = mtls.text("mode")
    if mode is not None and mode not in MODES:
        mtls.error("mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
