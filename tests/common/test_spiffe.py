from __future__ import annotations

import pytest

from meshguard.common import spiffe
from meshguard.common.spiffe import SpiffeId, SpiffeIdError


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://cluster.local/ns/default/sa/frontend",
        "spiffe://example.org",
        "spiffe://my_domain-1.example/a/B.c/d-e_f",
        "spiffe://td/x...y",
    ],
)
def test_parse_format_round_trip(uri: str) -> None:
    parsed = spiffe.parse(uri)
    assert str(parsed) == uri
    assert spiffe.parse(str(parsed)) == parsed


def test_parse_splits_trust_domain_and_path() -> None:
    parsed = spiffe.parse("spiffe://cluster.local/ns/default/sa/frontend")
    assert parsed == SpiffeId("cluster.local", "/ns/default/sa/frontend")
    assert parsed.namespace == "default"
    assert parsed.service_account == "frontend"
    assert parsed.principal == "cluster.local/ns/default/sa/frontend"


def test_for_workload_builds_istio_identity() -> None:
    sid = spiffe.for_workload("cluster.local", "shop", "checkout")
    assert str(sid) == "spiffe://cluster.local/ns/shop/sa/checkout"
    assert (sid.namespace, sid.service_account) == ("shop", "checkout")


@pytest.mark.parametrize("path", ["", "/ns/default", "/ns/a/sa/b/extra", "/x/a/sa/b", "/ns/a/x/b"])
def test_non_workload_paths_have_no_namespace(path: str) -> None:
    sid = SpiffeId("example.org", path)
    assert sid.namespace is None
    assert sid.service_account is None


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "empty"),
        ("http://cluster.local/ns/a/sa/b", "must start with 'spiffe://'"),
        ("SPIFFE://cluster.local/ns/a", "must start with 'spiffe://'"),
        ("spiffe:/cluster.local", "must start with 'spiffe://'"),
        ("spiffe://", "trust domain is empty"),
        ("spiffe:///ns/a/sa/b", "trust domain is empty"),
        ("spiffe://Cluster.Local/ns/a", "contains 'C', 'L'"),
        ("spiffe://exa mple.org", "contains ' '"),
        ("spiffe://cluster.local:8080/ns/a", "port"),
        ("spiffe://user@cluster.local/ns/a", "userinfo"),
        ("spiffe://cluster.local/ns/a?x=1", "query"),
        ("spiffe://cluster.local/ns/a#frag", "fragment"),
        ("spiffe://cluster.local/", "empty segment"),
        ("spiffe://cluster.local/ns//sa/b", "empty segment"),
        ("spiffe://cluster.local/ns/./sa", "'.' segments"),
        ("spiffe://cluster.local/ns/../sa", "'..' segments"),
        ("spiffe://cluster.local/ns/a%20b", "contains '%'"),
        ("spiffe://cluster.local/ns/a:b", "contains ':'"),
        ("spiffe://cluster.local/" + "a" * 2048, "longer than 2048 bytes"),
    ],
)
def test_malformed_ids_are_rejected_with_the_reason(uri: str, reason: str) -> None:
    with pytest.raises(SpiffeIdError) as err:
        spiffe.parse(uri)
    assert reason in str(err.value)


def test_parse_errors_quote_the_input() -> None:
    with pytest.raises(SpiffeIdError, match=r"^'spiffe://td/a//b': path has an empty segment"):
        spiffe.parse("spiffe://td/a//b")


def test_constructor_validates_too() -> None:
    with pytest.raises(SpiffeIdError, match="must start with '/'"):
        SpiffeId("example.org", "ns/a")
    with pytest.raises(SpiffeIdError, match="trust domain is empty"):
        SpiffeId("", "/a")


@pytest.mark.parametrize(("namespace", "account"), [("", "sa"), ("ns", ""), ("a/b", "sa")])
def test_for_workload_rejects_non_segments(namespace: str, account: str) -> None:
    with pytest.raises(SpiffeIdError, match="one non-empty path segment"):
        spiffe.for_workload("cluster.local", namespace, account)


def test_ids_are_hashable_values() -> None:
    a = spiffe.parse("spiffe://td/ns/a/sa/b")
    assert {a, spiffe.for_workload("td", "a", "b")} == {a}
