"""Hypothesis: arbitrary policies and CheckRequests never crash; every check gets a decision."""

from __future__ import annotations

import asyncio
from typing import Any

from envoy.service.auth.v3 import external_auth_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshguard.authz import loader
from meshguard.authz.authn import Authenticator
from meshguard.authz.authorizer import Authorizer
from meshguard.authz.compiler import Context, EngineOptions
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.grpc_api import AuthorizationServicer
from meshguard.authz.http_api import HttpAuthorization
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule
from meshguard.authz.validation import VALIDATORS
from meshguard.common.resources import from_dict
from tests.authz.support import request

TEXT = st.text(alphabet="ab*/{}.:-1 09[]", max_size=12)
VALUE = st.one_of(TEXT, st.sampled_from(["10.0.0.0/8", "::1", "*", "/a/{**}", "8080", ""]))
VALUES = st.lists(VALUE, max_size=3)
SOURCE_KEYS = [
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
    "notNamespaces", "serviceAccounts", "trustDomains", "ipBlocks", "notRemoteIpBlocks",
]  # fmt: skip
OP_KEYS = ["hosts", "notHosts", "ports", "notPorts", "methods", "paths", "notPaths"]
WHEN_KEYS = st.one_of(
    TEXT,
    st.sampled_from(
        ["source.ip", "request.headers[x]", "request.auth.claims[a][b]", "destination.port",
         "connection.sni", "request.auth.principal", "experimental.envoy.filters.x[y]"]
    ),
)  # fmt: skip
ANY_JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
RULE = st.one_of(
    st.none(),
    ANY_JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "from": st.lists(
                st.fixed_dictionaries(
                    {"source": st.dictionaries(st.sampled_from(SOURCE_KEYS), VALUES)}
                ),
                max_size=2,
            ),
            "to": st.lists(
                st.fixed_dictionaries(
                    {"operation": st.dictionaries(st.sampled_from(OP_KEYS), VALUES)}
                ),
                max_size=2,
            ),
            "when": st.lists(
                st.fixed_dictionaries(
                    {"key": WHEN_KEYS}, optional={"values": VALUES, "notValues": VALUES}
                ),
                max_size=2,
            ),
        },
    ),
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["ALLOW", "DENY", "AUDIT", "CUSTOM", "x"]),
        "rules": st.one_of(st.lists(RULE, max_size=3), ANY_JSON),
        "selector": st.one_of(ANY_JSON, st.just({"matchLabels": {"app": "a"}})),
        "targetRefs": ANY_JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=SPEC, dry_run=st.sampled_from([None, "true", "yes"]), tcp=st.booleans())
def test_any_policy_validates_compiles_and_decides(
    spec: Any, dry_run: str | None, tcp: bool
) -> None:
    meta: dict[str, Any] = {"name": "p", "namespace": "foo"}
    if dry_run is not None:
        meta["annotations"] = {"istio.io/dry-run": dry_run}
    resource = from_dict(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": meta,
            "spec": spec,
        }
    )
    VALIDATORS[("security.istio.io", "AuthorizationPolicy")](resource)
    policies = loader.build([resource], EngineOptions(), strict=False)
    attrs = request(tcp=tcp, principal="spiffe://cluster.local/ns/foo/sa/x", headers={"x": "a"})
    decision = policies.decide(Context(attrs, None))
    assert decision.reason in {"deny_policy", "allow_policy", "no_allow_policy", "no_allow_match"}


async def _no_keys(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
    return None


SERVICER = AuthorizationServicer(
    Authorizer(lambda: loader.build([], EngineOptions()), Authenticator(_no_keys)),
    DecisionLog(deny_rate=0.0),
    xff_trusted_hops=1,
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {
            "ns": TEXT, "labels": TEXT, "principal": TEXT, "src": VALUE, "dst": VALUE,
            "port": st.integers(0, 70000), "http": st.booleans(), "path": TEXT, "host": TEXT,
            "headers": st.dictionaries(TEXT, TEXT, max_size=3), "xff": TEXT,
        }
    )
)  # fmt: skip
def test_any_check_request_gets_a_decision(fields: dict[str, Any]) -> None:
    req = external_auth_pb2.CheckRequest()
    a = req.attributes
    a.context_extensions["namespace"] = fields["ns"]
    a.context_extensions["labels"] = fields["labels"]
    a.source.principal = fields["principal"]
    a.source.address.socket_address.address = fields["src"]
    a.destination.address.socket_address.address = fields["dst"]
    a.destination.address.socket_address.port_value = fields["port"]
    if fields["http"]:
        h = a.request.http
        h.path, h.host = fields["path"], fields["host"]
        for k, v in fields["headers"].items():
            h.headers[k] = v
        h.headers["x-forwarded-for"] = fields["xff"]
    response = external_auth_pb2.CheckResponse.FromString(asyncio.run(SERVICER.Check(req, None)))
    assert response.status.code in (0, 3, 7, 16)


class _Transport:
    """Collects what an HTTP connection writes, without a socket."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "wrote after closing"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


HTTP_SERVICE = HttpAuthorization(SERVICER.authorizer, DecisionLog(deny_rate=0.0))
REQUEST_PIECES = st.sampled_from(
    [
        b"GET /a HTTP/1.1\r\n", b"POST /b?x=1 HTTP/1.0\r\n", b"HEAD / HTTP/1.1\r\n",
        b"host: h\r\n", b"x-meshguard-labels: a=b\r\n", b"x-meshguard-labels: nope\r\n",
        b"x-meshguard-source-ip: 1.2.3.4\r\n", b"x-meshguard-destination-port: x\r\n",
        b"content-length: 3\r\n", b"transfer-encoding: chunked\r\n", b"connection: close\r\n",
        b"\r\n", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"\x00\xff", b" \t", b":",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.one_of(REQUEST_PIECES, st.binary(max_size=20)), max_size=30))
def test_any_bytes_on_the_http_flavour_get_answers_or_a_close(chunks: list[bytes]) -> None:
    async def feed() -> _Transport:
        transport = _Transport()
        connection = HTTP_SERVICE.connection()
        connection.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            if transport.closed:
                break
            connection.data_received(chunk)
        connection.connection_lost(None)
        return transport

    transport = asyncio.run(feed())
    answers = transport.written.split(b"HTTP/1.1 ")[1:]
    assert all(a[:3] in (b"200", b"400", b"403", b"413") for a in answers), transport.written
