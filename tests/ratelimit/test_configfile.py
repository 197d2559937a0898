"""Config files beyond the corpus: wrapped resources, pass-2 type errors, merges, metadata."""

from __future__ import annotations

import pytest

from meshguard.common.findings import FindingsError
from meshguard.ratelimit.configfile import parse_file


def messages(text: str) -> list[str]:
    with pytest.raises(FindingsError) as caught:
        parse_file(text, "f.yaml")
    return [f.message for f in caught.value.findings]


def test_rate_limit_config_resource_spec_is_one_domain() -> None:
    docs = parse_file(
        "apiVersion: meshguard.io/v1alpha1\nkind: RateLimitConfig\nmetadata: {name: x}\n"
        "spec:\n  domain: edge\n  descriptors:\n    - key: user\n"
        "---\napiVersion: meshguard.io/v1alpha1\nkind: RateLimitConfig\nspec: {domain: other}\n",
        "f.yaml",
    )
    assert [d.domain for d in docs] == ["edge", "other"]
    assert docs[0].descriptors[0].key == "user"


def test_resource_spec_is_checked_with_the_same_rules() -> None:
    found = messages(
        "apiVersion: meshguard.io/v1alpha1\nkind: RateLimitConfig\n"
        "spec:\n  domain: edge\n  descriptors:\n    - key: user\n      ratelimit: {}\n"
    )
    assert found == ["config error, unknown key 'ratelimit'"]


def test_type_mismatches_are_unmarshal_errors() -> None:
    found = messages(
        "domain: d\ndescriptors:\n  - key: k\n    shadow_mode: 'yes'\n"
        "    rate_limit: {unit: minute, requests_per_unit: '5'}\n"
    )
    assert "cannot unmarshal !!str `5` into uint32" in found[0]
    assert "cannot unmarshal !!str `yes` into bool" in found[0]


def test_large_ints_and_floats_fail_the_generic_check() -> None:
    assert messages("domain: d\ndescriptors:\n  - key: k\n    value: 1e3\n") == [
        "error checking config"
    ]
    assert messages("domain: 18446744073709551615\n") == ["error checking config"]


def test_merge_keys_are_applied() -> None:
    docs = parse_file(
        "domain: d\ndescriptors:\n  - &base {key: k, rate_limit: {unit: second}}\n"
        "  - <<: *base\n    value: v\n",
        "f.yaml",
    )
    assert [(d.key, d.value) for d in docs[0].descriptors] == [("k", ""), ("k", "v")]


def test_metadata_is_free_but_must_fit_a_struct() -> None:
    docs = parse_file(
        "domain: d\ndescriptors:\n  - key: k\n    metadata: {anything: [1, x, {z: 1.5}]}\n",
        "f.yaml",
    )
    assert docs[0].descriptors[0].metadata == {"anything": [1, "x", {"z": 1.5}]}
    found = messages("domain: d\ndescriptors:\n  - key: k\n    metadata: {1: x}\n")
    assert found[0].startswith("error parsing metadata")


def test_empty_file_has_no_domain() -> None:
    docs = parse_file("", "f.yaml")
    assert docs[0].domain == ""
