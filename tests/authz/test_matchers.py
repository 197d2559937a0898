"""Value matchers (authz-semantics.md §4)."""

from __future__ import annotations

import ipaddress

import pytest

from meshguard.authz import matchers


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("abc*", "abcd", True),
        ("/info*", "/information", True),
        ("*abc", "xabc", True),
        ("*abc", "abcx", False),
        ("*", "x", True),
        ("*", "", False),
        ("a*c", "abc", False),
        ("a*c", "a*c", True),
        ("ABC", "abc", False),
        (" abc", "abc", False),
    ],
)
def test_generic_string_rule(value: str, subject: str, expected: bool) -> None:
    assert matchers.string(value)(subject) is expected


def test_header_star_is_presence_even_when_empty() -> None:
    assert matchers.header("*")("")
    assert not matchers.string("*")("")


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("cluster.local/ns/foo/sa/sleep", "spiffe://cluster.local/ns/foo/sa/sleep", True),
        ("cluster.local/ns/foo/sa/sleep", "cluster.local/ns/foo/sa/sleep", False),
        ("spiffe://cluster.local/ns/foo/sa/sleep", "spiffe://cluster.local/ns/foo/sa/sleep", False),
        ("*/sa/sleep", "spiffe://td/ns/foo/sa/sleep", True),
        ("*/sa/sleep", "td/ns/foo/sa/sleep", False),
        ("cluster.local/ns/foo/*", "spiffe://cluster.local/ns/foo/sa/x", True),
        ("*", "anything", True),
        ("*", "", False),
        ("cluster.local/ns/*/sa/x", "spiffe://cluster.local/ns/foo/sa/x", False),
    ],
)
def test_principal(value: str, subject: str, expected: bool) -> None:
    assert matchers.principal(value)(subject) is expected


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("foo", "spiffe://td/ns/foo/sa/x", True),
        ("foo", "spiffe://td/ns/foo-bar/sa/x", False),
        ("team-*", "spiffe://td/ns/team-a/sa/x", True),
        ("*", "spiffe://td/ns/a/sa/x", True),
        ("foo", "spiffe://td/sa/x", False),
        ("foo", "", False),
    ],
)
def test_namespace(value: str, subject: str, expected: bool) -> None:
    assert matchers.namespace(value)(subject) is expected


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("sleep", "spiffe://td/ns/foo/sa/sleep", True),
        ("sleep", "spiffe://td/ns/foo/sa/sleep-v2", False),
        ("sleep", "spiffe://td/ns/bar/sa/sleep", False),
        ("bar/sleep", "spiffe://td/ns/bar/sa/sleep", True),
        ("bar/sleep", "spiffe://td/ns/bar/x/sa/sleep/y", True),
    ],
)
def test_service_account(value: str, subject: str, expected: bool) -> None:
    assert matchers.service_account(value, "foo")(subject) is expected


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("td.local", "spiffe://td.local/ns/a/sa/b", True),
        ("td.local", "spiffe://td.localx/ns/a/sa/b", False),
        ("*.local", "spiffe://td.local/ns/a/sa/b", True),
        ("td*", "spiffe://td-2/ns/a/sa/b", True),
        ("*", "spiffe://x/ns/a/sa/b", True),
        ("*", "", False),
    ],
)
def test_trust_domain(value: str, subject: str, expected: bool) -> None:
    assert matchers.trust_domain(value)(subject) is expected


@pytest.mark.parametrize(
    ("value", "iss", "sub", "expected"),
    [
        ("*", "i", "s", True),
        ("*", "i", "", False),
        ("iss/sub", "iss", "sub", True),
        ("iss/sub", "iss", "sub2", False),
        ("iss/*", "iss", "x", True),
        ("iss/*", "iss", "", False),
        ("iss/p*", "iss", "pq", True),
        ("*/sub", "any", "sub", True),
        ("*/sub", "", "sub", False),
        ("*ss/sub", "iss", "sub", True),
        ("is*", "iss", "anything", True),
        ("*ub", "x", "sub", True),
        ("https://accounts.example.com/u-42", "https://accounts.example.com", "u-42", True),
        ("https://a.com/x/y", "https://a.com", "x/y", False),
        ("nosplit", "nosplit", "", False),
    ],
)
def test_request_principal(value: str, iss: str, sub: str, expected: bool) -> None:
    assert matchers.request_principal(value)(iss, sub) is expected


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("example.com", "example.com", True),
        ("Example.COM", "example.com", True),
        ("example.com", "example.com:8080", False),
        ("example.com:*", "example.com:8080", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*", "", True),
    ],
)
def test_host(value: str, subject: str, expected: bool) -> None:
    assert matchers.host(value)(subject) is expected


@pytest.mark.parametrize(
    ("value", "subject", "expected"),
    [
        ("/allow/admin/{**}", "/allow/admin/", True),
        ("/allow/admin/{**}", "/allow/admin/x/y", True),
        ("/allow/admin/{**}", "/allow/admin", False),
        ("/store/{**}/cart", "/store//cart", True),
        ("/store/{**}/cart", "/store/a/b/cart", True),
        ("/store/{**}/cart", "/store/cart", False),
        ("/users/{*}/orders", "/users/42/orders", True),
        ("/users/{*}/orders", "/users//orders", False),
        ("/users/{*}/orders", "/users/4/2/orders", False),
        ("/users/{*}", "/users/42/x", False),
        ("/a/*", "/a/b/c", True),
        ("*", "/", True),
    ],
)
def test_path(value: str, subject: str, expected: bool) -> None:
    assert matchers.path(value)(subject) is expected


@pytest.mark.parametrize(
    ("values", "ip", "expected"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "11.1.2.3", False),
        (["1.2.3.4"], "1.2.3.4", True),
        (["1.2.3.4"], "1.2.3.5", False),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "10.0.0.1", False),
        (["0.0.0.0/0"], "::1", False),
        (["::/0"], "1.1.1.1", False),
        (["10.0.0.1/24"], "10.0.0.200", True),
    ],
)
def test_networks(values: list[str], ip: str, expected: bool) -> None:
    assert matchers.networks(values)(ipaddress.ip_address(ip)) is expected


def test_networks_absent_ip_never_matches() -> None:
    assert not matchers.networks(["0.0.0.0/0"])(None)
