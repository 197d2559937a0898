"""No false positives: Istio's own samples pass every layer (warnings allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.common.resources import load_paths
from meshguard.registry import default_registry
from meshguard.webhook.schema import cel_findings
from tests.webhook.support import SAMPLES

FILES = sorted(SAMPLES.glob("*.yaml"))
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")


@pytest.mark.parametrize("sample", FILES, ids=lambda p: p.name)
def test_sample_is_accepted(sample: Path) -> None:
    registry = default_registry()
    for resource in load_paths([sample]):
        if resource.group not in ISTIO_GROUPS or not registry.knows(resource):
            continue
        findings = registry.validate(resource)
        problems = [f for f in findings if f.is_error or "unknown field" in f.message]
        problems += cel_findings(resource)
        assert problems == [], resource.ref


def test_samples_cover_the_validated_kinds() -> None:
    kinds = {r.kind for f in FILES for r in load_paths([f]) if r.group in ISTIO_GROUPS}
    assert {"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"} <= kinds
