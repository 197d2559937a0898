"""A development stand-in for the cluster's service-account token issuer in ``meshguard up``.

The mesh CA only signs for identities proven by a projected ServiceAccount token; locally there
is no kubelet, so the stack makes a key, gives the CA its key set (``--token-verifier
issuer-keys``) and writes each sidecar the token a kubelet would have projected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://kubernetes.default.svc.cluster.local"
KID = "meshguard-up"


class DevServiceAccounts:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_jwks(self, path: Path) -> Path:
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        public.update({"kid": KID, "alg": "RS256", "use": "sig"})
        path.write_text(json.dumps({"keys": [public]}))
        return path

    def write_token(self, path: Path, namespace: str, account: str, audience: str) -> Path:
        """A projected token for ``namespace/account``, valid for a day (the stack's lifetime)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + 86400,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account}},
        }
        path.write_text(jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KID}))
        return path
