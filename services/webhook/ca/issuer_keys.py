"""Verify projected ServiceAccount tokens offline, with the cluster issuer's public keys.

The keys come from a JWKS document (what ``/openid/v1/jwks`` of the API server serves) or PEM
public keys. Expiry, issuer and audience are checked; the identity comes from the
``kubernetes.io`` claims, cross-checked with ``sub`` so a token cannot claim two identities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from meshguard.webhook.ca.tokens import (
    DEFAULT_AUDIENCE,
    ServiceAccountIdentity,
    TokenRejected,
    identity_from_username,
)

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"]
_LEEWAY_SECONDS = 30


class IssuerKeysVerifier:
    """A :class:`~meshguard.webhook.ca.tokens.TokenVerifier` over a fixed set of public keys."""

    def __init__(
        self,
        keys: Sequence[Any],
        *,
        issuer: str | None,
        audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        if not keys:
            raise ValueError("at least one service-account issuer public key is needed")
        self._keys = list(keys)
        self._issuer = issuer
        self._audience = audience

    @classmethod
    def from_file(
        cls, path: Path, *, issuer: str | None, audience: str = DEFAULT_AUDIENCE
    ) -> IssuerKeysVerifier:
        """Keys from a JWKS JSON document or from PEM public keys, one after another."""
        text = path.read_text()
        if text.lstrip().startswith("{"):
            keys = [jwt.PyJWK(k).key for k in json.loads(text).get("keys", [])]
        else:
            keys = [
                serialization.load_pem_public_key(("-----BEGIN" + block).encode())
                for block in text.split("-----BEGIN")[1:]
            ]
        return cls(keys, issuer=issuer, audience=audience)

    async def verify(self, token: str) -> ServiceAccountIdentity:
        claims = self._decode(token)
        identity = identity_from_username(str(claims.get("sub", "")))
        k8s = claims.get("kubernetes.io")
        if isinstance(k8s, dict):
            account = k8s.get("serviceaccount")
            name = account.get("name") if isinstance(account, dict) else None
            if (k8s.get("namespace"), name) != (identity.namespace, identity.service_account):
                raise TokenRejected("claims-mismatch", "kubernetes.io claims disagree with sub")
        return identity

    def _decode(self, token: str) -> dict[str, Any]:
        options = {"require": ["exp", "sub", "aud"] + (["iss"] if self._issuer else [])}
        last: jwt.InvalidTokenError | None = None
        for key in self._keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=_ALGORITHMS,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=_LEEWAY_SECONDS,
                    options=options,  # type: ignore[arg-type]
                )
                return claims
            except jwt.InvalidSignatureError as exc:
                last = exc  # try the next key (rotation keeps old and new keys)
            except jwt.ExpiredSignatureError:
                raise TokenRejected("expired", "the token has expired") from None
            except jwt.InvalidAudienceError:
                raise TokenRejected(
                    "wrong-audience", f"the token is not for audience {self._audience!r}"
                ) from None
            except jwt.InvalidIssuerError:
                raise TokenRejected("wrong-issuer", "the token has another issuer") from None
            except jwt.InvalidTokenError as exc:
                raise TokenRejected("invalid", f"the token is invalid: {exc}") from None
        raise TokenRejected("bad-signature", f"no issuer key verifies the token ({last})")
