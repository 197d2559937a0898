"""The request as Istio's authorization sees it: a typed snapshot independent of the wire.

``checkrequest.py`` builds these from an Envoy CheckRequest; the engine only reads them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class HttpRequest:
    """``headers`` has lower-case names (duplicates comma-joined) and the pseudo-headers
    ``:authority``, ``:method``, ``:path``; ``path`` is the raw target including the query."""

    host: str
    method: str
    path: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: NO_HEADERS)
    scheme: str = ""

    @property
    def url_path(self) -> str:
        """What ``paths`` match: the path without query string and fragment."""
        end = len(self.path)
        for mark in ("?", "#"):
            found = self.path.find(mark)
            if found != -1:
                end = min(end, found)
        return self.path[:end]

    @property
    def query(self) -> str:
        path = self.path.split("#", 1)[0]
        return path.partition("?")[2]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestAttributes:
    """One request or TCP connection (``http`` None) to the workload ``namespace``/``labels``.

    ``labels`` None means the workload's labels are unknown: selector-scoped policies then do
    not apply. Empty strings / None mean the attribute is absent.
    """

    namespace: str
    labels: Mapping[str, str] | None
    source_principal: str = ""
    source_ip: IPAddress | None = None
    remote_ip: IPAddress | None = None
    destination_ip: IPAddress | None = None
    destination_port: int | None = None
    destination_principal: str = ""
    sni: str = ""
    http: HttpRequest | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A verified JWT: its payload with space-delimited claims already split into lists."""

    claims: Mapping[str, Any]

    @property
    def issuer(self) -> object:
        return self.claims.get("iss")

    @property
    def subject(self) -> object:
        return self.claims.get("sub")
