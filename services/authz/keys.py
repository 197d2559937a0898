"""JSON Web Key sets: which algorithms each key may verify, prepared once per key set.

The key type decides the algorithm family, never the token: an RSA or EC public key is never
offered to HMAC, and ``oct`` keys are only ever HMAC secrets. ``alg: none`` fits no key.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

_BY_KTY: dict[str, tuple[str, ...]] = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "oct": ("HS256", "HS384", "HS512"),
    "OKP": ("EdDSA",),
}
_EC_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
SUPPORTED_ALGORITHMS = frozenset(
    {a for algs in _BY_KTY.values() for a in algs} | set(_EC_BY_CURVE.values())
)


class KeySetError(ValueError):
    """The document is not a usable JWK set."""


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """One verification key and the algorithms it is allowed to verify."""

    kid: str | None
    algorithms: frozenset[str]
    prepared: Mapping[str, Any]  # algorithm name -> key object PyJWT verifies with


@dataclasses.dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[Key, ...]

    def candidates(self, alg: str, kid: str | None) -> list[Any]:
        """Prepared keys fitting the token's ``alg`` (and ``kid`` when the token names one)."""
        return [
            key.prepared[alg]
            for key in self.keys
            if alg in key.algorithms and (kid is None or key.kid is None or key.kid == kid)
        ]


def _algorithms(jwk: Mapping[str, Any]) -> tuple[str, ...]:
    kty = jwk.get("kty")
    if kty == "EC":
        alg = _EC_BY_CURVE.get(str(jwk.get("crv")))
        family: tuple[str, ...] = (alg,) if alg else ()
    else:
        family = _BY_KTY.get(str(kty), ())
    declared = jwk.get("alg")
    if isinstance(declared, str):
        return (declared,) if declared in family else ()
    return family


def _prepare(jwk: Mapping[str, Any]) -> Key | None:
    if jwk.get("use") not in (None, "sig"):
        return None
    prepared: dict[str, Any] = {}
    for alg in _algorithms(jwk):
        try:
            prepared[alg] = jwt.get_algorithm_by_name(alg).from_jwk(dict(jwk))
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
    if not prepared:
        return None
    kid = jwk.get("kid")
    return Key(kid if isinstance(kid, str) else None, frozenset(prepared), prepared)


def parse_key_set(text: str) -> KeySet:
    """A KeySet from JWKS JSON; keys of unknown types are skipped, a bad document raises."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KeySetError("JWKS is not valid JSON") from exc
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise KeySetError("JWKS has no 'keys' list")
    prepared = (_prepare(k) for k in keys if isinstance(k, Mapping))
    return KeySet(tuple(k for k in prepared if k is not None))
