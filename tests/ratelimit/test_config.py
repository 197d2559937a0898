"""Compiled configs: Istio's sample loads unchanged; arbitrary input never crashes the loader."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshguard.common.findings import FindingsError
from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import Unit, compile_sources
from meshguard.ratelimit.matcher import match
from meshguard.ratelimit.model import Descriptor
from tests.harness.paths import CONFORMANCE

SAMPLE = CONFORMANCE / "istio-samples/ratelimit_rate-limit-service.yaml"


def istio_sample_config() -> str:
    """The envoyproxy/ratelimit config of the sample's ConfigMap (it sits in a comment)."""
    block = SAMPLE.read_text().split("config.yaml: |", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if not line.startswith("#      "):
            break
        lines.append(line[len("#      ") :])
    return "\n".join(lines) + "\n"


def test_istio_sample_config_loads_unchanged() -> None:
    config = compile_sources([SourceFile("config.yaml", istio_sample_config())])
    domain = config.domains["echo-ratelimit"]
    root = match(domain, Descriptor((("PATH", "/"),)))
    other = match(domain, Descriptor((("PATH", "/x"),)))
    assert root is not None and root.limit.requests_per_unit == 1
    assert other is not None and other.limit.requests_per_unit == 100
    assert root.limit.unit is Unit.MINUTE


_YAMLISH = st.text(
    alphabet=st.sampled_from(list("abkeyvalu_:-*&!|>'\"{}[],#\n 0123456789.")),
    max_size=120,
)
_KEYS = st.sampled_from(
    ["domain", "descriptors", "key", "value", "rate_limit", "unit", "requests_per_unit",
     "unlimited", "name", "replaces", "shadow_mode", "share_threshold", "metadata", "bogus"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_YAMLISH)
def test_random_text_is_loaded_or_rejected_with_findings(text: str) -> None:
    try:
        compile_sources([SourceFile("f.yaml", text)])
    except FindingsError as exc:
        assert exc.findings


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=20))  # fmt: skip
def test_random_structures_are_loaded_or_rejected_with_findings(value: object) -> None:
    import yaml

    text = yaml.safe_dump(value)
    try:
        compile_sources([SourceFile("f.yaml", text)])
    except FindingsError as exc:
        assert exc.findings


def findings_of(text: str) -> list[tuple[str, str]]:
    try:
        compile_sources([SourceFile("c.yaml", text)])
    except FindingsError as exc:
        return [(f.path, f.message) for f in exc.findings]
    raise AssertionError("config was accepted")


def test_extension_fields_are_validated_with_paths() -> None:
    found = findings_of(
        """
domain: d
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: 1}
    rate_limits: [{unit: second, requests_per_unit: 1}]
  - key: b
    rate_limits:
      - {unit: minute, requests_per_unit: 1, unit_multiplier: 0}
      - {unit: hour, requests_per_unit: 1, algorithm: token_bucket}
  - key: c
    rate_limits:
      - {unit: minute, requests_per_unit: 1, algorithm: gcra}
      - {unit: minute, requests_per_unit: 5, algorithm: gcra}
  - key: d
    rate_limits:
      - {unlimited: true}
      - {unit: hour, requests_per_unit: 1}
"""
    )
    assert found == [
        ("descriptors[0].rate_limits", "use either rate_limit or rate_limits, not both"),
        ("descriptors[1].rate_limits[0].unit_multiplier", "unit_multiplier must be at least 1"),
        (
            "descriptors[1].rate_limits[1].algorithm",
            "unknown algorithm 'token_bucket' (expected one of fixed_window, gcra, sliding_window)",
        ),
        (
            "descriptors[2].rate_limits[1]",
            "two limits of this descriptor have the same algorithm and window (gcra, 60s)",
        ),
        ("descriptors[3].rate_limits", "an unlimited limit cannot be combined with other limits"),
    ]


def test_extension_field_types_are_checked_like_the_references() -> None:
    found = findings_of(
        "domain: d\ndescriptors:\n  - key: a\n    rate_limits: {unit: second}\n"
        "  - key: b\n    rate_limit: {unit: second, unit_multiplier: -1}\n"
    )
    assert len(found) == 1
    assert "cannot unmarshal !!map into []config.YamlRateLimit" in found[0][1]
    assert "cannot unmarshal !!int `-1` into uint32" in found[0][1]


def test_a_single_rate_limits_entry_keeps_the_reference_names() -> None:
    config = compile_sources(
        [
            SourceFile(
                "c.yaml",
                "domain: d\ndescriptors:\n  - key: a\n"
                "    rate_limits: [{unit: minute, requests_per_unit: 4}]\n",
            )
        ]
    )
    found = match(config.domains["d"], Descriptor((("a", "x"),)))
    assert found is not None and found.stat_keys == ("d.a",) and found.limit.key_tag == ""
    assert config.dump() == "d.a: unit=MINUTE requests_per_unit=4\n"
