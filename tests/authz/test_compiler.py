"""Every Source / Operation / when field, compiled and evaluated (authz-semantics.md §3, §4)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.support import allowed, request

PEER = "spiffe://cluster.local/ns/foo/sa/sleep"


def _source(fields: str) -> str:
    return f"{{rules: [{{from: [{{source: {{{fields}}}}}]}}]}}"


def _op(fields: str) -> str:
    return f"{{rules: [{{to: [{{operation: {{{fields}}}}}]}}]}}"


def _when(key: str, values: str, *, negative: bool = False) -> str:
    name = "notValues" if negative else "values"
    return f"{{rules: [{{when: [{{key: '{key}', {name}: {values}}}]}}]}}"


@pytest.mark.parametrize(
    ("spec", "attrs", "expected"),
    [
        (_source("principals: [cluster.local/ns/foo/sa/sleep]"), {"principal": PEER}, True),
        (_source("principals: [cluster.local/ns/foo/sa/sleep]"), {"principal": ""}, False),
        (_source("notPrincipals: [cluster.local/ns/foo/sa/sleep]"), {"principal": PEER}, False),
        (_source("namespaces: [foo]"), {"principal": PEER}, True),
        (_source("notNamespaces: [foo]"), {"principal": PEER}, False),
        (_source("serviceAccounts: [sleep]"), {"principal": PEER}, True),
        (_source("serviceAccounts: [bar/sleep]"), {"principal": PEER}, False),
        (_source("notServiceAccounts: [foo/sleep]"), {"principal": PEER}, False),
        (_source("trustDomains: [cluster.local]"), {"principal": PEER}, True),
        (_source("notTrustDomains: ['*.local']"), {"principal": PEER}, False),
        (_source("ipBlocks: [10.0.0.0/24]"), {"source_ip": "10.0.0.9"}, True),
        (_source("notIpBlocks: [10.0.0.0/24]"), {"source_ip": "10.0.0.9"}, False),
        (_source("remoteIpBlocks: [192.0.2.0/24]"), {"remote_ip": "192.0.2.7"}, True),
        (
            _source("remoteIpBlocks: [192.0.2.0/24]"),
            {"source_ip": "192.0.2.7", "remote_ip": "10.5.5.5"},
            False,
        ),
        (_source("notRemoteIpBlocks: ['2001:db8::/32']"), {"remote_ip": "2001:db8::5"}, False),
        (_op("hosts: [Example.com]"), {"host": "EXAMPLE.com"}, True),
        (_op("hosts: [example.com]"), {"host": "example.com:80"}, False),
        (_op("notHosts: ['*.example.com']"), {"host": "a.example.com"}, False),
        (_op("ports: ['8080']"), {"port": 8080}, True),
        (_op("ports: ['8080']"), {"port": 80}, False),
        (_op("notPorts: ['8080']"), {"port": 8080}, False),
        (_op("methods: [GET]"), {"method": "GET"}, True),
        (_op("methods: [get]"), {"method": "GET"}, False),
        (_op("notMethods: [GET]"), {"method": "POST"}, True),
        (_op("paths: [/a]"), {"path": "/a?x=1"}, True),
        (_op("paths: [/a]"), {"path": "/a#frag"}, True),
        (_op("paths: [/A]"), {"path": "/a"}, False),
        (_op("notPaths: ['/admin*']"), {"path": "/administrator"}, False),
        (_op("paths: ['/pkg.Svc/*']"), {"path": "/pkg.Svc/Call", "method": "POST"}, True),
        (_when("request.headers[X-Env]", "[prod]"), {"headers": {"x-env": "prod"}}, True),
        (_when("request.headers[x-env]", "[Prod]"), {"headers": {"x-env": "prod"}}, False),
        (_when("request.headers[x-env]", "['*']"), {"headers": {"x-env": ""}}, True),
        (_when("request.headers[x-env]", "['*']"), {}, False),
        (_when("request.headers[x-env]", "['a,b']"), {"headers": {"x-env": "a,b"}}, True),
        (_when("request.headers[:path]", "[/a?x=1]"), {"path": "/a?x=1"}, True),
        (_when("request.headers[:method]", "[GET]"), {"method": "GET"}, True),
        (_when("source.ip", "[10.0.0.1]"), {}, True),
        (_when("remote.ip", "[10.9.0.0/16]"), {"remote_ip": "10.9.1.1"}, True),
        (_when("destination.ip", "[10.0.0.2]"), {}, True),
        (_when("destination.port", "['8080']"), {}, True),
        (_when("destination.port", "['8080']", negative=True), {}, False),
        (_when("connection.sni", "['*.svc']"), {"sni": "a.svc"}, True),
        (_when("connection.sni", "['*']"), {"sni": ""}, False),
        (_when("source.principal", "[cluster.local/ns/foo/sa/sleep]"), {"principal": PEER}, True),
        (_when("source.namespace", "[foo]"), {"principal": PEER}, True),
        (_when("source.serviceAccount", "[foo/sleep]"), {"principal": PEER}, True),
        (_when("source.trustDomain", "[cluster.local]"), {"principal": PEER}, True),
    ],
)
def test_field(spec: str, attrs: dict[str, Any], expected: bool) -> None:
    assert allowed(spec, request(**attrs)) is expected


CLAIMS = {
    "iss": "https://issuer.example.com",
    "sub": "u-42",
    "aud": ["api", "web"],
    "azp": "frontend",
    "groups": ["admin", 7, "dev"],
    "org": {"team": {"name": "core"}},
    "admin": True,
    "scope": ["read", "write"],
    "a.b/c:d": "x",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (_when("request.auth.claims[groups]", "[dev]"), True),
        (_when("request.auth.claims[groups]", "['7']"), False),
        (_when("request.auth.claims[admin]", "['true']"), False),
        (_when("request.auth.claims[org][team][name]", "[core]"), True),
        (_when("request.auth.claims[org][team]", "['*']"), False),
        (_when("request.auth.claims[org][missing]", "[x]"), False),
        (_when("request.auth.claims[org][missing]", "[x]", negative=True), True),
        (_when("request.auth.claims[a.b/c:d]", "[x]"), True),
        (_when("request.auth.claims[scope]", "[write]"), True),
        (_when("request.auth.claims[iss]", "['https://*']"), True),
        (_when("request.auth.principal", "['https://issuer.example.com/u-42']"), True),
        (_when("request.auth.principal", "['*/u-4*']"), True),
        (_when("request.auth.audiences", "[web]"), True),
        (_when("request.auth.audiences", "[mobile]"), False),
        (_when("request.auth.presenter", "[frontend]"), True),
        (_source("requestPrincipals: ['https://issuer.example.com/u-42']"), True),
        (_source("notRequestPrincipals: ['*']"), False),
    ],
)
def test_claims(spec: str, expected: bool) -> None:
    assert allowed(spec, request(), claims=CLAIMS) is expected


def test_request_principal_star_needs_sub() -> None:
    spec = _source("requestPrincipals: ['*']")
    assert not allowed(spec, request(), claims={"iss": "i"})
    assert allowed(spec, request(), claims={"iss": "i", "sub": "s"})


def test_claims_absent_without_identity() -> None:
    assert not allowed(_when("request.auth.claims[iss]", "['*']"), request())


def test_trust_domain_aliases_expand_principals() -> None:
    spec = _source("principals: [cluster.local/ns/foo/sa/sleep]")
    peer = "spiffe://prod.example/ns/foo/sa/sleep"
    old = "spiffe://old.example/ns/foo/sa/sleep"
    assert allowed(spec, request(principal=peer), trust_domain="prod.example")
    assert not allowed(spec, request(principal=old), trust_domain="prod.example")
    assert allowed(
        spec,
        request(principal=old),
        trust_domain="prod.example",
        trust_domain_aliases=("old.example",),
    )


def test_experimental_envoy_metadata() -> None:
    key = "experimental.envoy.filters.network.mysql_proxy[db.table]"
    metadata = {"envoy.filters.network.mysql_proxy": {"db.table": ["update", "select"]}}
    assert allowed(_when(key, "['[update]']"), request(metadata=metadata))
    assert not allowed(_when(key, "['[delete]']"), request(metadata=metadata))
    plain = {"envoy.filters.network.mysql_proxy": {"db.table": "t1"}}
    assert allowed(_when(key, "[t1]"), request(metadata=plain))
