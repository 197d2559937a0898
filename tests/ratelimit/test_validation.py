"""RateLimitConfig resources are judged by the shared registry."""

from __future__ import annotations

from meshguard.common.resources import parse_text
from meshguard.registry import default_registry


def validate(spec: str) -> list[str]:
    text = (
        f"apiVersion: meshguard.io/v1alpha1\nkind: RateLimitConfig\nmetadata: {{name: x}}\n{spec}"
    )
    (resource,) = parse_text(text, "r.yaml")
    return [f.message for f in default_registry().validate(resource)]


def test_valid_spec_has_no_findings() -> None:
    assert validate("spec:\n  domain: d\n  descriptors:\n    - {key: k, value: '*'}\n") == []


def test_invalid_spec_reports_the_reference_message() -> None:
    found = validate(
        "spec:\n  domain: d\n  descriptors:\n    - key: k\n      rate_limit: {unit: x}\n"
    )
    assert found == ["invalid rate limit unit 'x'"]
    assert validate("spec: {}\n") == ["config file cannot have empty domain"]
