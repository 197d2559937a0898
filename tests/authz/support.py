"""Builders shared by the authz tests: policies from YAML, requests from keywords."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from meshguard.authz import loader
from meshguard.authz.attributes import HttpRequest, Identity, RequestAttributes
from meshguard.authz.compiler import Context, EngineOptions
from meshguard.authz.engine import Decision, PolicySet
from meshguard.common.resources import parse_text


def policy_set(text: str, *, strict: bool = True, **options: Any) -> PolicySet:
    return loader.build(parse_text(text, "test.yaml"), EngineOptions(**options), strict=strict)


def ap(spec: str, *, name: str = "p", namespace: str = "foo", annotations: str = "") -> str:
    """One AuthorizationPolicy document with a flow-style ``spec``."""
    meta = f"  annotations: {annotations}\n" if annotations else ""
    return (
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n{meta}spec: {spec}\n"
    )


def request(
    *,
    namespace: str = "foo",
    labels: Mapping[str, str] | None = None,
    principal: str = "",
    source_ip: str | None = "10.0.0.1",
    remote_ip: str | None = None,
    destination_ip: str | None = "10.0.0.2",
    port: int | None = 8080,
    sni: str = "",
    host: str = "example.com",
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    tcp: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> RequestAttributes:
    http = None
    if not tcp:
        merged = {":authority": host, ":method": method, ":path": path}
        merged.update({k.lower(): v for k, v in (headers or {}).items()})
        http = HttpRequest(host, method, path, merged)
    src = ipaddress.ip_address(source_ip) if source_ip else None
    return RequestAttributes(
        namespace=namespace,
        labels={"app": "a"} if labels is None else labels,
        source_principal=principal,
        source_ip=src,
        remote_ip=ipaddress.ip_address(remote_ip) if remote_ip else src,
        destination_ip=ipaddress.ip_address(destination_ip) if destination_ip else None,
        destination_port=port,
        sni=sni,
        http=http,
        metadata=metadata or {},
    )


def decide(
    policies: PolicySet, attrs: RequestAttributes, claims: Mapping[str, Any] | None = None
) -> Decision:
    identity = Identity(claims) if claims is not None else None
    return policies.decide(Context(attrs, identity))


def allowed(spec_or_text: str, attrs: RequestAttributes, **kwargs: Any) -> bool:
    """Whether a single ALLOW/DENY policy (flow-style spec) admits ``attrs``."""
    text = spec_or_text if spec_or_text.startswith("---") else ap(spec_or_text)
    claims = kwargs.pop("claims", None)
    return decide(policy_set(text, **kwargs), attrs, claims).allowed


# JWT material ---------------------------------------------------------------------------

ISSUER = "https://issuer.example.com"


class Signer:
    """A key pair with its public JWK, minting tokens for tests."""

    def __init__(self, kind: str = "RSA", kid: str = "k1") -> None:
        import json

        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self.kid = kid
        if kind == "RSA":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif kind == "EC":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif kind == "OKP":
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.alg = "EdDSA"
            jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = b"0123456789abcdef0123456789abcdef"
            self.alg = "HS256"
            jwk = jwt.algorithms.HMACAlgorithm.to_jwk(self.private, as_dict=True)
        jwk["kid"] = kid
        self.jwk = jwk
        self.jwks = json.dumps({"keys": [jwk]})

    def token(
        self, alg: str | None = None, headers: Mapping[str, Any] | None = None, **claims: Any
    ) -> str:
        import time

        import jwt

        payload = {"iss": ISSUER, "sub": "alice", "exp": int(time.time()) + 600, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload,
            self.private,
            algorithm=alg or self.alg,
            headers={"kid": self.kid, **(headers or {})},
        )
