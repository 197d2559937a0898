"""The benchmark's policy set and tokens: 50 AuthorizationPolicies over 10 namespaces plus one
RS256 RequestAuthentication, and the same rules for Envoy's native jwt_authn + RBAC filters.

Every namespace gets the same five policies (two DENY, three ALLOW of which one targets another
workload), so the target workload ``app=web`` in ``bench-0`` sees a realistic scoped set and the
benchmark request (``GET /api/items`` with a valid token) is allowed after every DENY rule was
tried. The RSA key is generated per run; nothing secret is written anywhere persistent.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://issuer.bench.example"
NAMESPACE = "bench-0"
LABELS = "app=web"
REQUEST_PATH = "/api/items"
NAMESPACES = 10
_KID = "bench-key"


@dataclasses.dataclass(frozen=True, slots=True)
class Signer:
    """One RSA key: its JWKS (public part) and a signer for tokens of ``ISSUER``."""

    key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> Signer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def jwks(self) -> str:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=_KID, alg="RS256", use="sig")
        return json.dumps({"keys": [jwk]}, separators=(",", ":"))

    def token(self, *, groups: tuple[str, ...] = ("dev",), lifetime: float = 3600.0) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "bench-user",
            "aud": "bench",
            "groups": list(groups),
            "iat": now,
            "exp": now + int(lifetime),
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": _KID})


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _namespace_policies(namespace: str) -> list[dict[str, Any]]:
    web = {"matchLabels": {"app": "web"}}
    return [
        _policy(
            "deny-internal",
            namespace,
            {
                "action": "DENY",
                "rules": [{"to": [{"operation": {"paths": ["/internal/*", "/debug/*"]}}]}],
            },
        ),
        _policy(
            "deny-blocked",
            namespace,
            {
                "action": "DENY",
                "rules": [{"when": [{"key": "request.headers[x-block]", "values": ["yes"]}]}],
            },
        ),
        _policy(
            "allow-api",
            namespace,
            {
                "selector": web,
                "rules": [
                    {
                        "from": [{"source": {"requestPrincipals": [f"{ISSUER}/*"]}}],
                        "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/*"]}}],
                    }
                ],
            },
        ),
        _policy(
            "allow-admin",
            namespace,
            {
                "selector": web,
                "rules": [
                    {
                        "to": [{"operation": {"paths": ["/admin/*"]}}],
                        "when": [{"key": "request.auth.claims[groups]", "values": ["admin"]}],
                    }
                ],
            },
        ),
        _policy(
            "allow-health",
            namespace,
            {
                "selector": {"matchLabels": {"app": "other"}},
                "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/healthz"]}}]}],
            },
        ),
    ]


def documents(signer: Signer) -> list[dict[str, Any]]:
    """The full policy set as Kubernetes documents (50 AuthorizationPolicies + 1 RA)."""
    docs = [p for i in range(NAMESPACES) for p in _namespace_policies(f"bench-{i}")]
    docs.append(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": "jwt", "namespace": NAMESPACE},
            "spec": {"jwtRules": [{"issuer": ISSUER, "jwks": signer.jwks}]},
        }
    )
    return docs


def yaml_text(signer: Signer) -> str:
    """The policy file meshguard loads (JSON is YAML, and needs no extra dependency)."""
    return "".join(f"---\n{json.dumps(doc)}\n" for doc in documents(signer))


# Envoy-native equivalents of bench-0's rules for the app=web workload ---------------------

_JWT_AUTHN = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
_RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _payload(key: str, value: dict[str, Any]) -> dict[str, Any]:
    """An RBAC principal on a claim of the verified JWT (jwt_authn's payload metadata)."""
    return {
        "metadata": {
            "filter": "envoy.filters.http.jwt_authn",
            "path": [{"key": "payload"}, {"key": key}],
            "value": value,
        }
    }


def _path_prefix(prefix: str) -> dict[str, Any]:
    return {"url_path": {"path": {"prefix": prefix}}}


def _methods(*methods: str) -> dict[str, Any]:
    return {
        "or_rules": {
            "rules": [
                {"header": {"name": ":method", "string_match": {"exact": m}}} for m in methods
            ]
        }
    }


def native_filters(signer: Signer, *, jwt_cache: bool = True) -> list[dict[str, Any]]:
    """jwt_authn (as istiod configures it: missing token allowed, token stripped) then the DENY
    and ALLOW RBAC filters for bench-0/app=web."""
    provider: dict[str, Any] = {
        "issuer": ISSUER,
        "local_jwks": {"inline_string": signer.jwks},
        "payload_in_metadata": "payload",
        "forward": False,
    }
    if jwt_cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    requires = {
        "requires_any": {"requirements": [{"provider_name": "bench"}, {"allow_missing": {}}]}
    }
    anyone = [{"any": True}]
    deny = {
        "deny-internal": {
            "permissions": [
                {"or_rules": {"rules": [_path_prefix("/internal/"), _path_prefix("/debug/")]}}
            ],
            "principals": anyone,
        },
        "deny-blocked": {
            "permissions": [{"header": {"name": "x-block", "string_match": {"exact": "yes"}}}],
            "principals": anyone,
        },
    }
    allow = {
        "allow-api": {
            "permissions": [
                {"and_rules": {"rules": [_methods("GET", "POST"), _path_prefix("/api/")]}}
            ],
            "principals": [_payload("iss", {"string_match": {"exact": ISSUER}})],
        },
        "allow-admin": {
            "permissions": [_path_prefix("/admin/")],
            "principals": [
                _payload("groups", {"list_match": {"one_of": {"string_match": {"exact": "admin"}}}})
            ],
        },
    }
    return [
        {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": _typed(
                _JWT_AUTHN,
                providers={"bench": provider},
                rules=[{"match": {"prefix": "/"}, "requires": requires}],
            ),
        },
        {
            "name": "envoy.filters.http.rbac.deny",
            "typed_config": _typed(_RBAC, rules={"action": "DENY", "policies": deny}),
        },
        {
            "name": "envoy.filters.http.rbac.allow",
            "typed_config": _typed(_RBAC, rules={"action": "ALLOW", "policies": allow}),
        },
    ]
