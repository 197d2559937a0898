from __future__ import annotations

import pytest

from meshguard.webhook import hosts


@pytest.mark.parametrize(
    "host",
    [
        "reviews",
        "Reviews.Example.COM",
        "a.b.c.",
        "*.example.com",
        "*",
        "*foo.example.com",
        "*-api.example.com",
        "x" * 63 + ".com",
    ],
)
def test_wildcard_domain_accepts(host: str) -> None:
    assert hosts.wildcard_domain_error(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "a_b.com",
        "-a.com",
        "a-.com",
        "a..com",
        "10.0.0.1",
        "example.123",
        "foo.*.com",
        "x" * 64 + ".com",
        "a." * 130 + "com",
        "shop/reviews",
    ],
)
def test_wildcard_domain_rejects(host: str) -> None:
    assert hosts.wildcard_domain_error(host) is not None


def test_ip_is_accepted_only_where_allowed() -> None:
    assert hosts.wildcard_domain_or_ip_error("10.96.0.42") is None
    assert hosts.wildcard_domain_or_ip_error("::1") is None
    assert hosts.wildcard_domain_or_ip_error("10.96.0.420") is not None


def test_fqdn_rejects_wildcards() -> None:
    assert hosts.fqdn_error("*.example.com") is not None
    assert hosts.fqdn_error("api.example.com.") is None


@pytest.mark.parametrize(
    ("host", "partial"),
    [("*", False), ("*.a.com", False), ("*-api.a.com", True), ("a*.b.com", True), ("a.com", False)],
)
def test_partial_wildcard(host: str, partial: bool) -> None:
    assert hosts.is_partial_wildcard(host) is partial


@pytest.mark.parametrize(
    ("general", "specific", "expected"),
    [
        ("*.a.com", "b.a.com", True),
        ("*.a.com", "*.b.a.com", True),
        ("*.a.com", "a.com", False),
        ("*", "anything.io", True),
        ("b.a.com", "*.a.com", False),
        ("A.com", "a.COM", True),
    ],
)
def test_covers(general: str, specific: str, expected: bool) -> None:
    assert hosts.covers(general, specific) is expected


@pytest.mark.parametrize(
    ("value", "require", "tilde", "ok"),
    [
        ("./*", True, True, True),
        ("istio-system/*", True, True, True),
        ("~shop/api.example.com", True, True, True),
        ("~shop/api.example.com", False, False, False),
        ("api.example.com", True, True, False),
        ("api.example.com", False, False, True),
        ("./reviews", True, True, False),
        ("*/10.1.2.3", False, False, True),
        ("Shop_NS/a.example.com", False, False, False),
        ("/a.example.com", False, False, False),
        ("*/*-api.example.com", False, False, False),
    ],
)
def test_namespaced_host(value: str, require: bool, tilde: bool, ok: bool) -> None:
    problem, _ = hosts.namespaced_host_error(value, require_namespace=require, allow_tilde=tilde)
    assert (problem is None) is ok, problem
