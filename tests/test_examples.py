"""The examples the README points at: valid ones pass, each broken one fails where it says."""

from __future__ import annotations

import pytest

from meshguard.validate_command import validate_paths

from .harness.paths import REPO

EXAMPLES = REPO / "examples" / "validate"


def test_valid_examples_have_no_errors() -> None:
    findings = validate_paths([str(EXAMPLES / "valid")])
    assert [f for f in findings if f.is_error] == []
    assert not any("no validator" in f.message for f in findings), "every kind is checked"


@pytest.mark.parametrize(
    ("name", "path", "words"),
    [
        ("zero-timeout.yaml", "spec.http[0].timeout", "at least 1ms"),
        ("bad-cidr.yaml", "spec.rules[0].from[0].source.ipBlocks[0]", "10.0.0.0/33"),
        ("not-yaml.yaml", "", "invalid YAML: line 5"),
    ],
)
def test_broken_example_is_rejected_at_its_field(name: str, path: str, words: str) -> None:
    errors = [f for f in validate_paths([str(EXAMPLES / "broken" / name)]) if f.is_error]
    assert [(f.path, words in f.message) for f in errors] == [(path, True)]


def test_one_broken_file_does_not_hide_the_others() -> None:
    errors = [f for f in validate_paths([str(EXAMPLES / "broken")]) if f.is_error]
    assert len({f.file for f in errors}) == 3
