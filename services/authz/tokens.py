"""Verify one JWT for one JWT rule: issuer, time window and audience, then the signature.

Errors carry Envoy jwt_authn's messages so clients see what they would see behind Istio.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from meshguard.authz.keys import SUPPORTED_ALGORITHMS, KeySet
from meshguard.authz.model import JWTRule

CLOCK_SKEW_SECONDS = 60
ALWAYS_SPACE_DELIMITED = ("scope", "permission")

MALFORMED = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
BAD_HEADER = "Jwt header is an invalid JSON"
BAD_PAYLOAD = "Jwt payload is an invalid JSON"
BAD_ALG = "Jwt header [alg] is not supported"
EXPIRED = "Jwt is expired"
NOT_YET_VALID = "Jwt not yet valid"
UNKNOWN_ISSUER = "Jwt issuer is not configured"
BAD_AUDIENCE = "Audiences in Jwt are not allowed"
NO_KEY = "Jwks doesn't have key to match kid or alg from Jwt"
BAD_SIGNATURE = "Jwt verification fails"
NO_JWKS = "Jwks remote fetch is failed"


class TokenError(Exception):
    """Verification failed; ``status`` is 401, or 403 for a disallowed audience."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True)
class UnverifiedToken:
    """The parts of a token readable before verification (to route it to an issuer)."""

    raw: str
    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    payload_segment: str

    @property
    def issuer(self) -> str:
        iss = self.payload.get("iss")
        return iss if isinstance(iss, str) else ""


def _segment(text: str, error: str) -> Mapping[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenError(error) from exc
    if not isinstance(decoded, Mapping):
        raise TokenError(error)
    return decoded


def parse(token: str) -> UnverifiedToken:
    """Split and decode a token's header and payload (not verified).

    Clients resend the same token for its whole lifetime and decoding it (two base64 + JSON
    passes) was the largest share of the JWT stage per request, so successful parses are kept
    in a bounded LRU; the result is a pure function of the string and is never mutated.
    Malformed tokens raise every time and are not cached.
    """
    return _parse_cached(token)


@functools.lru_cache(maxsize=4096)
def _parse_cached(token: str) -> UnverifiedToken:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError(MALFORMED)
    return UnverifiedToken(
        token, _segment(parts[0], BAD_HEADER), _segment(parts[1], BAD_PAYLOAD), parts[1]
    )


def audiences_of(payload: Mapping[str, Any]) -> list[str]:
    aud = payload.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _sanitise_audience(aud: str) -> str:
    """jwt_authn compares audiences without an ``http://``/``https://`` scheme or a trailing
    ``/``, on both sides, because users so often add or forget them."""
    for scheme in ("http://", "https://"):
        if aud.startswith(scheme):
            aud = aud[len(scheme) :]
            break
    return aud[:-1] if aud.endswith("/") else aud


def audiences_allowed(token_audiences: list[str], allowed: tuple[str, ...]) -> bool:
    wanted = {_sanitise_audience(a) for a in allowed}
    return any(_sanitise_audience(a) in wanted for a in token_audiences)


def check_algorithm(token: UnverifiedToken) -> None:
    """Envoy rejects an unsupported ``alg`` while parsing, before it even looks at ``iss``."""
    alg = token.header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
        raise TokenError(BAD_ALG)


def _time_claim(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TokenError(f"Jwt payload [{name}] field is not an integer")
    return float(value)


def check_claims(token: UnverifiedToken, rule: JWTRule, now: float) -> None:
    """The checks jwt_authn makes before it needs a key, in its order: issuer, ``nbf``, ``exp``
    (both with the clock skew; ``exp`` 0 or absent never expires), then the audiences (403).

    Running them before the signature matters for what the client is told: an expired token
    is "Jwt is expired" whatever its signature, and a disallowed audience is a 403 even when
    the signature (or the key set) would also have failed.
    """
    payload = token.payload
    if rule.issuer and payload.get("iss") != rule.issuer:
        raise TokenError(UNKNOWN_ISSUER)
    nbf, exp = _time_claim(payload, "nbf"), _time_claim(payload, "exp")
    if now + CLOCK_SKEW_SECONDS < nbf:
        raise TokenError(NOT_YET_VALID)
    if exp > 0 and now > exp + CLOCK_SKEW_SECONDS:
        raise TokenError(EXPIRED)
    if rule.audiences and not audiences_allowed(audiences_of(payload), rule.audiences):
        raise TokenError(BAD_AUDIENCE, status=403)


def verify_signature(token: UnverifiedToken, keys: KeySet) -> dict[str, Any]:
    """The payload once a key of ``keys`` verifies the signature (claims: see check_claims)."""
    alg = str(token.header.get("alg"))
    kid = token.header.get("kid")
    candidates = keys.candidates(alg, kid if isinstance(kid, str) else None)
    if not candidates:
        raise TokenError(NO_KEY)
    for key in candidates:
        try:
            return jwt.decode(
                token.raw,
                key=key,
                algorithms=[alg],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_iat": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except PyJWTError:
            continue
    raise TokenError(BAD_SIGNATURE)


def normalise_claims(payload: Mapping[str, Any], rule: JWTRule) -> dict[str, Any]:
    """Claims as authorization sees them: space-delimited string claims split into lists."""
    claims = dict(payload)
    for name in (*ALWAYS_SPACE_DELIMITED, *rule.space_delimited_claims):
        value = claims.get(name)
        if isinstance(value, str):
            claims[name] = value.split()
    return claims
