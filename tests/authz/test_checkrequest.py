"""CheckRequest → request attributes: the contract in issue 3 item 3."""

from __future__ import annotations

import ipaddress

import pytest
from envoy.service.auth.v3 import external_auth_pb2

from meshguard.authz.checkrequest import (
    InvalidRequest,
    parse_labels,
    remote_ip,
    to_attributes,
    workload_labels,
)


def _check(**http: object) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    a = req.attributes
    a.source.principal = "spiffe://cluster.local/ns/client/sa/c"
    a.source.address.socket_address.address = "10.1.0.5"
    a.source.address.socket_address.port_value = 40000
    a.destination.address.socket_address.address = "10.2.0.7"
    a.destination.address.socket_address.port_value = 8080
    a.destination.principal = "spiffe://cluster.local/ns/shop/sa/checkout"
    if http:
        h = a.request.http
        h.host = str(http.get("host", "shop.example.com"))
        h.method = str(http.get("method", "GET"))
        h.path = str(http.get("path", "/cart?id=1"))
        for k, v in dict(http.get("headers", {})).items():  # type: ignore[call-overload]
            h.headers[k] = v
    return req


def test_http_request_fields() -> None:
    attrs = to_attributes(_check(headers={"X-Env": "prod"}, path="/cart?id=1"))
    assert attrs.http is not None
    assert attrs.http.host == "shop.example.com"
    assert attrs.http.url_path == "/cart"
    assert attrs.http.headers[":path"] == "/cart?id=1"
    assert attrs.http.headers["x-env"] == "prod"
    assert attrs.source_principal == "spiffe://cluster.local/ns/client/sa/c"
    assert attrs.source_ip == ipaddress.ip_address("10.1.0.5")
    assert attrs.remote_ip == attrs.source_ip
    assert attrs.destination_ip == ipaddress.ip_address("10.2.0.7")
    assert attrs.destination_port == 8080


def test_no_http_is_tcp() -> None:
    assert to_attributes(_check()).http is None


def test_namespace_from_destination_principal_and_labels_unknown() -> None:
    attrs = to_attributes(_check(method="GET"))
    assert attrs.namespace == "shop"
    assert attrs.labels is None


def test_context_extensions_win() -> None:
    req = _check(method="GET")
    req.attributes.context_extensions["namespace"] = "other"
    req.attributes.context_extensions["labels"] = "app=web, version=v1"
    req.attributes.destination.labels["app"] = "ignored"
    attrs = to_attributes(req)
    assert attrs.namespace == "other"
    assert attrs.labels == {"app": "web", "version": "v1"}


def test_destination_labels_used_when_no_extension() -> None:
    req = _check(method="GET")
    req.attributes.destination.labels["app"] = "checkout"
    assert to_attributes(req).labels == {"app": "checkout"}


def test_empty_labels_extension_is_known_and_empty() -> None:
    req = _check(method="GET")
    req.attributes.context_extensions["labels"] = ""
    assert to_attributes(req).labels == {}


def test_bad_labels_are_invalid() -> None:
    with pytest.raises(InvalidRequest):
        parse_labels("app")


def test_bad_address_is_invalid() -> None:
    req = _check(method="GET")
    req.attributes.source.address.socket_address.address = "not-an-ip"
    for _ in range(2):  # memoised parsing never remembers a failure as a success
        with pytest.raises(InvalidRequest):
            to_attributes(req)


def test_memoised_labels_are_read_only() -> None:
    labels = workload_labels("app=web, v=1")
    assert labels == {"app": "web", "v": "1"} and workload_labels("app=web, v=1") is labels
    with pytest.raises(TypeError):
        labels["app"] = "other"  # type: ignore[index]
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            workload_labels("app")


@pytest.mark.parametrize(
    ("xff", "hops", "expected"),
    [
        (None, 0, "10.1.0.5"),
        ("1.1.1.1, 2.2.2.2", 0, "2.2.2.2"),
        ("1.1.1.1, 2.2.2.2", 1, "1.1.1.1"),
        ("1.1.1.1, 2.2.2.2", 2, "10.1.0.5"),
        ("garbage", 0, "10.1.0.5"),
        ("2001:db8::1", 0, "2001:db8::1"),
    ],
)
def test_remote_ip(xff: str | None, hops: int, expected: str) -> None:
    headers = {"x-forwarded-for": xff} if xff else {}
    source = ipaddress.ip_address("10.1.0.5")
    assert remote_ip(headers, source, hops) == ipaddress.ip_address(expected)


def test_remote_ip_from_check_request_honours_trusted_hops() -> None:
    req = _check(headers={"x-forwarded-for": "203.0.113.9, 10.9.9.9"})
    assert to_attributes(req, xff_trusted_hops=1).remote_ip == ipaddress.ip_address("203.0.113.9")


def test_header_map_duplicates_are_comma_joined() -> None:
    req = _check(method="GET")
    for value in ("a", "b"):
        entry = req.attributes.request.http.header_map.headers.add()
        entry.key = "x-dup"
        entry.raw_value = value.encode()
    attrs = to_attributes(req)
    assert attrs.http is not None and attrs.http.headers["x-dup"] == "a,b"


def test_sni_and_metadata() -> None:
    req = _check(method="GET")
    req.attributes.tls_session.sni = "shop.svc"
    req.attributes.metadata_context.filter_metadata["envoy.filters.x"].update({"k": ["v"]})
    attrs = to_attributes(req)
    assert attrs.sni == "shop.svc"
    assert attrs.metadata == {"envoy.filters.x": {"k": ["v"]}}
