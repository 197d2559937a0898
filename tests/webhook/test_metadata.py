from __future__ import annotations

from meshguard.common.resources import from_dict
from meshguard.registry import default_registry
from tests.webhook.support import check, errors

SPEC = {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}


def test_internal_annotations_rejected() -> None:
    found = check("VirtualService", SPEC, annotations={"internal.istio.io/parents": "x"})
    assert "metadata.annotations[internal.istio.io/parents]" in errors(found)


def test_dry_run_rejected_outside_authorization_policy() -> None:
    found = check("DestinationRule", {"host": "a"}, annotations={"istio.io/dry-run": "true"})
    assert "metadata.annotations[istio.io/dry-run]" in errors(found)


def test_unexpected_top_level_key() -> None:
    resource = from_dict(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "a"},
            "spec": SPEC,
            "extra": 1,
        }
    )
    assert "extra" in errors(default_registry().validate(resource))
