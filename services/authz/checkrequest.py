"""Adapter: Envoy ext_authz v3 ``CheckRequest`` → :class:`RequestAttributes`.

The contract (documented in the README, relied on by other tools):

* workload: ``context_extensions`` ``namespace`` and ``labels`` (``k=v,k2=v2``), else
  ``destination.labels`` when Envoy fills them, else the namespace inside
  ``destination.principal``; labels that cannot be known stay None.
* ``source.principal`` / ``source.ip`` from ``attributes.source``; ``remote.ip`` is the
  rightmost ``x-forwarded-for`` entry after skipping ``xff_trusted_hops`` entries, else the
  source address; ``destination.ip``/``port`` from ``destination.address``; SNI from
  ``tls_session.sni``; no ``request.http`` means a TCP connection.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from meshguard.authz.attributes import HttpRequest, IPAddress, RequestAttributes

_NS_IN_SPIFFE = re.compile(r"spiffe://[^/]+/ns/([^/]+)/")


class InvalidRequest(ValueError):
    """The CheckRequest cannot be read; answered with INVALID_ARGUMENT / 400."""


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` → dict; an empty string is an empty (known) label set."""
    labels: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"context_extensions labels: {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


@functools.lru_cache(maxsize=1024)
def workload_labels(text: str) -> Mapping[str, str]:
    """:func:`parse_labels`, read-only and memoised: Envoy sends the same few label sets."""
    return MappingProxyType(parse_labels(text))


def namespace_of(principal: str) -> str:
    match = _NS_IN_SPIFFE.match(principal)
    return match.group(1) if match else ""


@functools.lru_cache(maxsize=1024)
def parse_ip(text: str, what: str) -> IPAddress | None:
    """Memoised (peers repeat; parsing costs more than the lookup); invalid input raises."""
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {text!r} is not an IP address") from exc


def remote_ip(
    headers: Mapping[str, str], source: IPAddress | None, trusted_hops: int
) -> IPAddress | None:
    """Envoy's computed client address: the (hops+1)-th ``x-forwarded-for`` entry from the
    right; the peer address when the header is absent, too short or not an IP."""
    forwarded = headers.get("x-forwarded-for")
    if not forwarded:
        return source
    entries = [e.strip() for e in forwarded.split(",")]
    if len(entries) <= trusted_hops:
        return source
    try:
        return ipaddress.ip_address(entries[-1 - trusted_hops])
    except ValueError:
        return source


def _value(value: Any) -> object:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    if kind in (None, "null_value"):
        return None
    return getattr(value, kind)


def _struct(struct: Any) -> dict[str, object]:
    """A protobuf Struct as plain Python values (dynamic metadata for ``experimental`` keys)."""
    return {k: _value(v) for k, v in struct.fields.items()}


def _headers(http: Any) -> dict[str, str]:
    headers = {k.lower(): v for k, v in http.headers.items()}
    if not headers and http.HasField("header_map"):
        for entry in http.header_map.headers:
            value = entry.value or entry.raw_value.decode("utf-8", "replace")
            name = entry.key.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def to_attributes(request: Any, *, xff_trusted_hops: int = 0) -> RequestAttributes:
    """Read a ``envoy.service.auth.v3.CheckRequest`` into request attributes."""
    attrs = request.attributes
    extensions = attrs.context_extensions
    destination = attrs.destination
    namespace = extensions.get("namespace") or namespace_of(destination.principal)
    labels: Mapping[str, str] | None = None
    if "labels" in extensions:
        labels = workload_labels(extensions["labels"])
    elif destination.labels:
        labels = MappingProxyType(dict(destination.labels))
    source_socket = attrs.source.address.socket_address
    dest_socket = destination.address.socket_address
    source_ip = parse_ip(source_socket.address, "source.address")
    http: HttpRequest | None = None
    headers: dict[str, str] = {}
    if attrs.HasField("request") and attrs.request.HasField("http"):
        raw = attrs.request.http
        headers = _headers(raw)
        host = raw.host or headers.get(":authority", "") or headers.get("host", "")
        method = raw.method or headers.get(":method", "")
        path = raw.path or headers.get(":path", "")
        headers.setdefault(":authority", host)
        headers.setdefault(":method", method)
        headers.setdefault(":path", path)
        http = HttpRequest(host, method, path, MappingProxyType(headers), raw.scheme)
    metadata: Mapping[str, Any] = MappingProxyType({})
    if attrs.HasField("metadata_context") and attrs.metadata_context.filter_metadata:
        metadata = MappingProxyType(
            {k: _struct(v) for k, v in attrs.metadata_context.filter_metadata.items()}
        )
    return RequestAttributes(
        namespace=namespace,
        labels=labels,
        source_principal=attrs.source.principal,
        source_ip=source_ip,
        remote_ip=remote_ip(headers, source_ip, xff_trusted_hops),
        destination_ip=parse_ip(dest_socket.address, "destination.address"),
        destination_port=dest_socket.port_value if dest_socket.address else None,
        destination_principal=destination.principal,
        sni=attrs.tls_session.sni if attrs.HasField("tls_session") else "",
        http=http,
        metadata=metadata,
    )
