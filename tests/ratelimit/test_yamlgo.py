"""Plain scalars resolve to yaml.v2's types, not PyYAML's."""

from __future__ import annotations

import pytest

from meshguard.ratelimit import yamlgo


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("true", yamlgo.BOOL),
        ("yes", yamlgo.BOOL),
        ("Off", yamlgo.BOOL),
        ("007", yamlgo.INT),
        ("0x1F", yamlgo.INT),
        ("1_000", yamlgo.INT),
        ("-12", yamlgo.INT),
        ("08", yamlgo.FLOAT),  # invalid octal, then a float for Go
        ("1e3", yamlgo.FLOAT),  # a string for PyYAML
        ("1.5", yamlgo.FLOAT),
        (".5", yamlgo.FLOAT),
        (".inf", yamlgo.FLOAT),
        ("1e999", yamlgo.STR),  # out of range: Go keeps the text
        ("", yamlgo.NULL),
        ("~", yamlgo.NULL),
        ("None", yamlgo.STR),
        ("2001-12-14", yamlgo.TIMESTAMP),
        ("1:30", yamlgo.STR),  # no sexagesimal numbers in yaml.v2
        ("/api/*", yamlgo.STR),
    ],
)
def test_resolve_plain(text: str, tag: str) -> None:
    assert yamlgo.resolve_plain(text) == tag


def test_quoted_scalars_are_strings_and_keep_their_text() -> None:
    node = yamlgo.compose_first('a: "true"\nb: 007\n')
    assert node is not None
    (_, a), (_, b) = node.value
    assert (a.tag, a.value) == (yamlgo.STR, "true")
    assert (b.tag, b.value) == (yamlgo.INT, "007")


def test_go_int_parsing_limits() -> None:
    assert yamlgo.parse_go_int("9223372036854775807") == 2**63 - 1
    assert yamlgo.parse_go_int("9223372036854775808") is None
    assert yamlgo.parse_go_int("9223372036854775808", signed=False) == 2**63
    assert yamlgo.parse_go_int("0b101") == 5
    assert yamlgo.parse_go_int("0o17") == 15
