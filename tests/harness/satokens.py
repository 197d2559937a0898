"""A stand-in Kubernetes service-account token issuer: signs projected tokens for tests.

Tokens carry the claims the kubelet's projected tokens carry (``iss``, ``sub``, ``aud``,
``exp``, ``kubernetes.io``), signed with an RSA key whose public half tests give the CA.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceAccountIssuer:
    key: rsa.RSAPrivateKey = dataclasses.field(repr=False)
    kid: str = "test-key"
    issuer: str = ISSUER

    @classmethod
    def create(cls, kid: str = "test-key") -> ServiceAccountIssuer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)

    def token(
        self,
        namespace: str,
        service_account: str,
        *,
        audience: str = "meshguard-ca",
        lifetime: float = 3600,
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": "0000"},
            },
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def write_jwks(self, path: Path) -> Path:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        path.write_text(json.dumps({"keys": [jwk]}))
        return path

    def write_pem(self, path: Path) -> Path:
        path.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return path
