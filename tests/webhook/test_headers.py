from __future__ import annotations

import pytest

from meshguard.webhook import headers
from meshguard.webhook.fields import Node, Report


@pytest.mark.parametrize(
    ("name", "ok"),
    [("x-user", True), (":authority", True), ("bad header", False), ("", False), ("a/b", False)],
)
def test_header_names(name: str, ok: bool) -> None:
    assert (headers.header_name_error(name) is None) is ok


def test_claim_keys() -> None:
    assert headers.is_claim_key("@request.auth.claims.groups")
    assert headers.is_claim_key("@request.auth.claims[nested][key]")
    assert not headers.is_claim_key("@request.auth.claims")


def _operations(ops: dict[str, object]) -> tuple[int, dict[str, str]]:
    report = Report()
    count = headers.check_header_operations(Node({"headers": ops}, "r", report), "headers")
    return count, {f.path: f.message for f in report.findings}


def test_header_operations() -> None:
    count, found = _operations({"request": {"set": {":authority": "a", "x": "1"}}})
    assert count == 1 and found == {}
    _, found = _operations({"request": {"set": {":path": "/"}, "remove": ["Host", ":method"]}})
    assert set(found) == {
        "r.headers.request.set[:path]",
        "r.headers.request.remove[0]",
        "r.headers.request.remove[1]",
    }
    _, found = _operations({"response": {"add": {"host": "x", "x-a": "50%"}}})
    assert set(found) == {"r.headers.response.add[host]", "r.headers.response.add[x-a]"}
    _, found = _operations({"request": {"add": {"x-a": "%REQ(x)%", "x-b": "a\nb"}}})
    assert set(found) == {"r.headers.request.add[x-b]"}


def test_string_match_prefix_rules() -> None:
    report = Report()
    headers.check_string_match(Node({"prefix": ""}, "m", report), allow_empty_prefix=True)
    assert report.findings == []
    headers.check_string_match(Node({"prefix": ""}, "m", report), allow_empty_prefix=False)
    headers.check_string_match(Node({"regex": "(?=x)"}, "n", report), allow_empty_prefix=True)
    assert [f.path for f in report.findings] == ["m.prefix", "n.regex"]
