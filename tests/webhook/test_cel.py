from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from meshguard.webhook import cel, schema


def _rules(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "x-kubernetes-validations":
                found.extend(r["rule"] for r in value)
            else:
                found.extend(_rules(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_rules(value))
    return found


def test_every_shipped_rule_is_known() -> None:
    rules = {r for s in schema.istio_crds().all_schemas() for r in _rules(s)}
    unknown = sorted(r for r in rules if cel.predicate(r) is None)
    assert unknown == []


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("duration(self) >= duration('1ms')", "0s", False),
        ("duration(self) >= duration('1ms')", "1ms", True),
        ("self.all(key, 0 < int(key) && int(key) <= 65535)", {"0": {}}, False),
        ("self.all(key, 0 < int(key) && int(key) <= 65535)", {"80": {}}, True),
        (
            "self.all(l1, self.exists_one(l2, l1.number == l2.number))",
            [{"number": 1}, {"number": 1}],
            False,
        ),
        ('url(self).getScheme() in ["http", "https"]', "ftp://x", False),
        ('url(self).getScheme() in ["http", "https"]', "https://x/jwks", True),
        (
            "(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + "
            "(has(self.jwks) ? 1 : 0) <= 1",
            {"jwksUri": "a", "jwks": "b"},
            False,
        ),
    ],
)
def test_predicates(rule: str, value: Any, expected: bool) -> None:
    assert cel.holds(rule, value) is expected


def test_unknown_rule_and_wrong_types_never_raise() -> None:
    assert cel.holds("self.foo()", 1) is None
    assert cel.holds("0 < self && self <= 65535", "x") is True
