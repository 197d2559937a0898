"""The webhook service's validators, registered in :func:`meshguard.registry.default_registry`.

Each validator is the kind's semantic checks plus the CRD's structural checks (what Istio's
webhook refuses when it decodes ``spec``, and unknown fields as warnings). Keyed by group and
kind, ignoring the version, as Istio does, so a newer API version is judged by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.common.validation import KindKey, Validator
from meshguard.webhook.destinationrule import validate_destination_rule
from meshguard.webhook.gateway import validate_gateway
from meshguard.webhook.peerauthentication import validate_peer_authentication
from meshguard.webhook.schema import structural_findings
from meshguard.webhook.serviceentry import validate_service_entry
from meshguard.webhook.sidecar import validate_sidecar
from meshguard.webhook.virtualservice import validate_virtual_service

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"


def with_schema(semantic: Callable[[Resource], list[Finding]]) -> Validator:
    """Semantic findings, then structural ones at paths the semantic checks did not cover.

    A path the semantic checks judged, even as a mere warning, keeps their verdict: where
    Istio's webhook only warns (more than two ``tlsCertificates``), it admits."""

    def validate(resource: Resource) -> list[Finding]:
        found = semantic(resource)
        covered = {f.path for f in found}
        found.extend(f for f in structural_findings(resource) if f.path not in covered)
        return found

    validate.__name__ = semantic.__name__
    validate.__doc__ = semantic.__doc__
    return validate


VALIDATORS: dict[KindKey, Validator] = {
    (NETWORKING, "Gateway"): with_schema(validate_gateway),
    (NETWORKING, "VirtualService"): with_schema(validate_virtual_service),
    (NETWORKING, "DestinationRule"): with_schema(validate_destination_rule),
    (NETWORKING, "ServiceEntry"): with_schema(validate_service_entry),
    (NETWORKING, "Sidecar"): with_schema(validate_sidecar),
    (SECURITY, "PeerAuthentication"): with_schema(validate_peer_authentication),
}
