"""Compiled configs: Istio's sample loads unchanged; arbitrary input never crashes the loader."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from meshguard.common.findings import FindingsError
from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import Unit, compile_sources
from meshguard.ratelimit.matcher import match
from meshguard.ratelimit.model import Descriptor

SAMPLE = (
    Path(__file__).resolve().parents[3]
    / "shared/conformance/istio-samples/ratelimit_rate-limit-service.yaml"
)


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
