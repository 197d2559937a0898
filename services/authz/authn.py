"""RequestAuthentication: find the JWT, verify it, and say what to do with headers.

Behaves like Envoy's jwt_authn as istiod configures it (authz-semantics.md §7): no token means
no identity (policies decide); a bad token is a 401 (403 for a disallowed audience) before any
policy runs; CORS preflights skip the whole stage; after success the token is stripped unless
``forwardOriginalToken`` and the output headers are set, replacing any client copies.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType
from typing import Any

from meshguard.authz import tokens
from meshguard.authz.attributes import HttpRequest, Identity
from meshguard.authz.keys import KeySet, KeySetError, parse_key_set
from meshguard.authz.model import HeaderLocation, JWTRule, RequestAuthentication
from meshguard.authz.tokens import TokenError

DEFAULT_HEADER = HeaderLocation("authorization", "Bearer ")
DEFAULT_PARAM = "access_token"
# RFC 4648 §5 base64url plus '.': what Envoy collects after a header location's prefix.
_JWT_CHARS = re.compile(r"[A-Za-z0-9_\-.]+")

KeyLookup = Callable[[JWTRule, bool], Awaitable[KeySet | None]]
Location = tuple[str, str, str]  # ("header", name, prefix) | ("param", name, "") | ("cookie", ...)


@dataclasses.dataclass(frozen=True, slots=True)
class AuthnResult:
    """``status`` 0 = continue to authorization (with ``identity`` when a token verified)."""

    status: int = 0
    message: str = ""
    identity: Identity | None = None
    issuer: str = ""
    headers_to_set: tuple[tuple[str, str], ...] = ()
    headers_to_remove: tuple[str, ...] = ()
    params_to_remove: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status != 0


NOT_APPLIED = AuthnResult()


def is_cors_preflight(http: HttpRequest) -> bool:
    """Envoy's test: ``OPTIONS`` with non-empty ``Origin`` and ``Access-Control-Request-Method``."""
    h = http.headers
    return http.method == "OPTIONS" and bool(
        h.get("origin") and h.get("access-control-request-method")
    )


def locations(rule: JWTRule) -> list[Location]:
    if rule.uses_default_locations:
        return [
            ("header", DEFAULT_HEADER.name, DEFAULT_HEADER.prefix),
            ("param", DEFAULT_PARAM, ""),
        ]
    return [
        *(("header", h.name.lower(), h.prefix) for h in rule.from_headers),
        *(("param", p, "") for p in rule.from_params),
        *(("cookie", c, "") for c in rule.from_cookies),
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class JwtPlan:
    """One workload's JWT stage, prepared once per config snapshot (not per request): its
    rules in issuer order, every (location, rule) to look a token up in, and the output
    header names clients must not be able to forge."""

    rules: tuple[JWTRule, ...]
    lookups: tuple[tuple[Location, JWTRule], ...]
    output_headers: frozenset[str]

    @classmethod
    def build(cls, authentications: Sequence[RequestAuthentication]) -> JwtPlan:
        rules = tuple(
            sorted((r for a in authentications for r in a.jwt_rules), key=lambda r: r.issuer)
        )
        output = {
            name.lower()
            for r in rules
            for name in (r.output_payload_to_header, *(c.header for c in r.output_claim_to_headers))
            if name
        }
        lookups = tuple((location, rule) for rule in rules for location in locations(rule))
        return cls(rules, lookups, frozenset(output))


def _extract(http: HttpRequest, location: Location) -> str | None:
    """The token at one location as Envoy's extractor reads it; None when it is not there.

    A location that is present yields a token even when empty or garbled (it then fails to
    parse: 401), as in Envoy: only a missing header/param/cookie, or a header lacking its
    prefix, counts as "no token".
    """
    kind, name, prefix = location
    if kind == "header":
        value = http.headers.get(name)
        if value is None or not prefix:
            return value
        at = value.find(prefix)
        if at == -1:
            return None
        # The first run of JWT characters after the prefix; with none, the whole value.
        match = _JWT_CHARS.search(value, at + len(prefix))
        return match.group(0) if match else value
    if kind == "param":
        if "?" not in http.path:
            return None
        for key, value in urllib.parse.parse_qsl(http.query, keep_blank_values=True):
            if key == name:
                return value
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(http.headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class Verified:
    """What a verified token yields for one rule, computed once per (token, rule)."""

    identity: Identity
    output_headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, rule: JWTRule, payload: dict[str, Any], token: tokens.UnverifiedToken) -> Verified:
        claims = MappingProxyType(tokens.normalise_claims(payload, rule))
        return cls(Identity(claims), tuple(_output_headers(rule, payload, token)))


class VerifiedCache:
    """Verified tokens by (token hash, rule), bounded, never past the token's ``exp``.

    Rules are keyed by identity (hashing a JWTRule's every field cost more than the rest of
    a lookup); each entry keeps its rule alive, so an ``id`` cannot be reused while it exists.
    """

    def __init__(self, size: int = 10_000, ttl: float = 300.0) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: collections.OrderedDict[
            tuple[bytes, int], tuple[float, Verified, JWTRule]
        ] = collections.OrderedDict()

    def get(self, token: str, rule: JWTRule, now: float) -> Verified | None:
        key = (hashlib.sha256(token.encode()).digest(), id(rule))
        found = self._entries.get(key)
        if found is None:
            return None
        expires, verified, _ = found
        if now >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verified

    def put(self, token: str, rule: JWTRule, verified: Verified, now: float) -> None:
        expires = now + self.ttl
        exp = verified.identity.claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool) and exp > 0:
            expires = min(expires, float(exp) + tokens.CLOCK_SKEW_SECONDS)
        key = (hashlib.sha256(token.encode()).digest(), id(rule))
        self._entries[key] = (expires, verified, rule)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class Authenticator:
    """Runs the RequestAuthentication stage for one request."""

    def __init__(self, keys: KeyLookup, cache: VerifiedCache | None = None) -> None:
        self._keys = keys
        self._cache = cache or VerifiedCache()
        self._inline: dict[str, KeySet | None] = {}

    async def _key_set(self, rule: JWTRule, unknown_kid: bool) -> KeySet | None:
        if rule.jwks:
            if rule.jwks not in self._inline:
                try:
                    self._inline[rule.jwks] = parse_key_set(rule.jwks)
                except KeySetError:
                    self._inline[rule.jwks] = None
            return self._inline[rule.jwks]
        return await self._keys(rule, unknown_kid)

    async def _verify(self, token: tokens.UnverifiedToken, rule: JWTRule) -> Verified:
        now = time.time()
        cached = self._cache.get(token.raw, rule, now)
        if cached is not None:
            return cached
        # Envoy checks the claims before it looks for a key (or fetches the key set).
        tokens.check_claims(token, rule, now)
        keys = await self._key_set(rule, False)
        if keys is None:
            raise TokenError(tokens.NO_JWKS)
        try:
            payload = tokens.verify_signature(token, keys)
        except TokenError as exc:
            if exc.message != tokens.NO_KEY or rule.jwks:
                raise
            refreshed = await self._key_set(rule, True)
            if refreshed is None or refreshed is keys:
                raise
            payload = tokens.verify_signature(token, refreshed)
        verified = Verified.of(rule, payload, token)
        self._cache.put(token.raw, rule, verified, now)
        return verified

    async def authenticate(
        self, http: HttpRequest | None, authentications: Sequence[RequestAuthentication]
    ) -> AuthnResult:
        return await self.run(http, JwtPlan.build(authentications))

    async def run(self, http: HttpRequest | None, plan: JwtPlan) -> AuthnResult:
        """The JWT stage with a workload's prepared plan (see :class:`JwtPlan`)."""
        if http is None or not plan.rules or is_cors_preflight(http):
            return NOT_APPLIED
        hygiene = tuple(sorted(h for h in plan.output_headers if h in http.headers))
        found: dict[str, list[tuple[Location, JWTRule]]] = {}
        for location, rule in plan.lookups:
            token = _extract(http, location)
            if token is not None:
                found.setdefault(token, []).append((location, rule))
        if not found:
            return AuthnResult(headers_to_remove=hygiene) if hygiene else NOT_APPLIED
        identity: Identity | None = None
        issuer = ""
        to_set: list[tuple[str, str]] = []
        to_remove = list(hygiene)
        params: list[str] = []
        for raw, configured in found.items():
            try:
                verified_rule, verified = await self._verify_any(raw, configured)
            except TokenError as exc:
                return AuthnResult(status=exc.status, message=exc.message)
            if identity is None:
                identity = verified.identity
                issuer = verified_rule.issuer
            to_set.extend(verified.output_headers)
            if not verified_rule.forward_original_token:
                for (kind, name, _), rule in configured:
                    if rule is not verified_rule:
                        continue
                    if kind == "header":
                        to_remove.append(name)
                    elif kind == "param":
                        params.append(name)
        return AuthnResult(
            identity=identity,
            issuer=issuer,
            headers_to_set=tuple(to_set),
            headers_to_remove=tuple(dict.fromkeys(to_remove)),
            params_to_remove=tuple(dict.fromkeys(params)),
        )

    async def _verify_any(
        self, raw: str, configured: list[tuple[Location, JWTRule]]
    ) -> tuple[JWTRule, Verified]:
        token = tokens.parse(raw)
        tokens.check_algorithm(token)
        candidates = [r for _, r in configured if not r.issuer or r.issuer == token.issuer]
        if not candidates:
            raise TokenError(tokens.UNKNOWN_ISSUER)
        failure: TokenError | None = None
        for rule in candidates if len(candidates) == 1 else dict.fromkeys(candidates):
            try:
                return rule, await self._verify(token, rule)
            except TokenError as exc:
                # A signature/expiry problem outranks an audience mismatch of another rule.
                if failure is None or (failure.status == 403 and exc.status == 401):
                    failure = exc
        assert failure is not None
        raise failure


def _claim_value(payload: dict[str, Any], path: str) -> str | None:
    value: object = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _output_headers(
    rule: JWTRule, payload: dict[str, Any], token: tokens.UnverifiedToken
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if rule.output_payload_to_header:
        out.append((rule.output_payload_to_header.lower(), token.payload_segment))
    for mapping in rule.output_claim_to_headers:
        value = _claim_value(payload, mapping.claim)
        if value is not None:
            out.append((mapping.header.lower(), value))
    return out
