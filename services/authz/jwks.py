"""Fetch and cache remote JWK sets (``jwksUri`` or OIDC discovery), like istiod does.

Keys are refreshed every ``refresh_interval``, and early when a token names an unknown ``kid``
(at most once per ``min_refresh_gap``). A failed fetch keeps the stale keys and retries with
exponential backoff. Link-local and cloud-metadata addresses are refused (SSRF), both for
literal hosts and for whatever a name resolves to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from prometheus_client import Counter

from meshguard.authz.keys import KeySet, KeySetError, parse_key_set

log = logging.getLogger("meshguard.authz.jwks")

FETCH_ERRORS = Counter(
    "meshguard_authz_jwks_fetch_errors_total", "Failed JWKS / OIDC discovery fetches.", ["host"]
)
FETCHES = Counter("meshguard_authz_jwks_fetches_total", "Successful JWKS fetches.", ["host"])

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_BLOCKED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS IMDS over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
    )
)


class FetchError(Exception):
    """A JWKS could not be obtained (network, status, content or a blocked address)."""


def is_blocked(address: str, blocked: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in blocked)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops blocked addresses."""

    def __init__(self, blocked: Sequence[Network]) -> None:
        self._inner = DefaultResolver()
        self._blocked = tuple(blocked)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if not is_blocked(r["host"], self._blocked)]
        if not allowed:
            raise OSError(f"{host} resolves only to blocked addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclasses.dataclass(slots=True)
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = 0.0
    next_attempt: float = 0.0
    backoff: float = 0.0
    last_kid_refresh: float = 0.0
    inflight: asyncio.Task[None] | None = None


class JwksCache:
    """Key sets by URI (or by issuer, for OIDC discovery), shared by every snapshot."""

    def __init__(
        self,
        *,
        refresh_interval: float = 20 * 60,
        initial_backoff: float = 60.0,
        max_backoff: float = 60 * 60,
        min_refresh_gap: float = 30.0,
        blocked: Sequence[Network] = DEFAULT_BLOCKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_interval = refresh_interval
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.min_refresh_gap = min_refresh_gap
        self.blocked = tuple(blocked)
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.blocked))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def get(
        self, jwks_uri: str, issuer: str, timeout: float, *, unknown_kid: bool = False
    ) -> KeySet | None:
        """The key set for a rule; fetches when missing or stale, None if never fetched."""
        key = (jwks_uri, "" if jwks_uri else issuer)
        entry = self._entries.setdefault(key, _Entry())
        now = self._clock()
        due = entry.keys is None or now - entry.fetched_at >= self.refresh_interval
        if unknown_kid and now - entry.last_kid_refresh >= self.min_refresh_gap:
            entry.last_kid_refresh = now
            due = True
        if due and now >= entry.next_attempt and entry.inflight is None:
            entry.inflight = asyncio.create_task(self._refresh(key, entry, timeout))
        if entry.inflight is not None and (entry.keys is None or unknown_kid):
            # Nothing usable (or the kid is unknown): wait for this fetch; otherwise serve stale.
            await asyncio.shield(entry.inflight)
        return entry.keys

    async def _refresh(self, key: tuple[str, str], entry: _Entry, timeout: float) -> None:
        jwks_uri, issuer = key
        try:
            uri = jwks_uri or await self._discover(issuer, timeout)
            entry.keys = parse_key_set(await self._fetch_text(uri, timeout))
            entry.fetched_at = self._clock()
            entry.backoff = 0.0
            entry.next_attempt = 0.0
            FETCHES.labels(_host(uri)).inc()
        except (FetchError, KeySetError) as exc:
            entry.backoff = min(self.max_backoff, entry.backoff * 2 or self.initial_backoff)
            entry.next_attempt = self._clock() + entry.backoff
            FETCH_ERRORS.labels(_host(jwks_uri or issuer)).inc()
            log.warning(
                "JWKS fetch failed; keeping stale keys",
                extra={"jwks": jwks_uri or issuer, "error": str(exc), "retry_in": entry.backoff},
            )
        finally:
            entry.inflight = None

    async def _discover(self, issuer: str, timeout: float) -> str:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            document: Any = json.loads(await self._fetch_text(url, timeout))
        except ValueError as exc:
            raise FetchError(f"{url}: not JSON") from exc
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(uri, str) or not uri:
            raise FetchError(f"{url}: no jwks_uri")
        return uri

    async def _fetch_text(self, uri: str, timeout: float) -> str:
        parsed = urllib.parse.urlsplit(uri)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise FetchError(f"{uri}: not an http(s) URL")
        if is_blocked(parsed.hostname, self.blocked):
            raise FetchError(f"{uri}: address is blocked (link-local / metadata)")
        try:
            async with self._client().get(
                uri, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise FetchError(f"{uri}: HTTP {response.status}")
                return await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise FetchError(f"{uri}: {exc}") from exc


def _host(uri: str) -> str:
    return urllib.parse.urlsplit(uri).hostname or uri
