"""Every Istio-kind case of the webhook conformance corpus through the shared registry.

The same cases go through the real HTTPS endpoint in tests/integration/test_webhook_server.py;
this file pins the validators themselves, with the field each denial must name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.registry import default_registry
from tests.webhook.support import CONFORMANCE, load_case

CASES = sorted(p for p in CONFORMANCE.glob("*/*.yaml") if p.parent.name != "pods")
STRICT_FIELD_LAYER = "api-server-strict-field-validation"

pytestmark = pytest.mark.skipif(not CASES, reason="conformance corpus not available")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path) -> None:
    header, resource = load_case(case)
    registry = default_registry()
    assert registry.knows(resource), f"no validator registered for {resource.kind}"
    findings = registry.validate(resource)
    expect = header["expect"][0]
    if header["istio-layer"][0].startswith(STRICT_FIELD_LAYER):
        # The validators warn (validate/analyze print it); the webhook promotes unknown fields
        # to a denial by default (tests/integration/test_webhook_server.py).
        assert not any(f.is_error for f in findings)
        assert any("unknown field" in f.message for f in findings)
        return
    errors = [f for f in findings if f.is_error]
    warnings = [f for f in findings if not f.is_error]
    if expect == "allow":
        assert findings == []
    elif expect.startswith("allow-with-warning"):
        assert errors == [] and warnings
    else:
        assert expect.startswith("deny"), expect
        assert errors
        assert all(f.path for f in errors), "every error names its field"
