"""A development stand-in for the cluster's service-account token issuer in ``meshguard up``.

The mesh CA only signs for identities proven by a projected ServiceAccount token; locally there
is no kubelet, so the stack makes a key, gives the CA its key set (``--token-verifier
issuer-keys``) and writes each sidecar the token a kubelet would have projected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from meshguard.stack.signing import RsaSigner

ISSUER = "https://kubernetes.default.svc.cluster.local"


class DevServiceAccounts:
    def __init__(self) -> None:
        self._signer = RsaSigner("meshguard-up")

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self._signer.jwks()))
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
        path.write_text(self._signer.sign(claims))
        return path
