"""Values for every chart toggle the tests render: defaults, each mode and each optional object."""

from __future__ import annotations

from typing import Any

POLICIES: list[dict[str, Any]] = [
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-reads", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "catalog"}},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/frontend"]}}],
                    "to": [{"operation": {"methods": ["GET"], "paths": ["/items/*"]}}],
                }
            ],
        },
    },
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": "jwt", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "catalog"}},
            "jwtRules": [
                {
                    "issuer": "https://issuer.example.com",
                    "jwksUri": "https://issuer.example.com/jwks",
                }
            ],
        },
    },
]

DOMAINS: list[dict[str, Any]] = [
    {
        "domain": "edge",
        "descriptors": [
            {"key": "remote_address", "rate_limit": {"unit": "minute", "requests_per_unit": 60}},
            {
                "key": "header_match",
                "value": "api",
                "descriptors": [
                    {"key": "path", "rate_limit": {"unit": "second", "requests_per_unit": 10}}
                ],
            },
        ],
    },
    {
        "domain": "internal",
        "descriptors": [
            {"key": "service", "rate_limit": {"unit": "hour", "requests_per_unit": 1000}}
        ],
    },
]

TOGGLES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "configs": {
        "authz": {
            "policies": POLICIES,
            "trustDomainAliases": ["old.example.com"],
            "eventLoop": "asyncio",
        },
        "ratelimit": {
            "domains": DOMAINS,
            "settings": {
                "fail-open": True,
                "shadow-mode": False,
                "near-limit-ratio": 0.9,
                "redis-timeout": "20ms",
                "local-cache-size-in-bytes": 1048576,
            },
        },
    },
    "cert-manager": {"certManager": {"enabled": True}},
    "cert-manager-issuer": {
        "certManager": {
            "enabled": True,
            "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
        }
    },
    "redis-external": {
        "redis": {
            "mode": "external",
            "url": "redis.example.com:6380",
            "auth": {"existingSecret": "redis-auth", "key": "password"},
            "tls": {"enabled": True, "existingSecret": "redis-ca"},
        }
    },
    "redis-sentinel": {
        "redis": {
            "mode": "sentinel",
            "sentinel": {
                "masterName": "main",
                "addresses": ["sentinel-0.redis:26379", "sentinel-1.redis:26379"],
                "auth": {"existingSecret": "sentinel-auth", "key": "password"},
            },
        }
    },
    "redis-cluster": {
        "redis": {"mode": "cluster", "cluster": {"addresses": ["rc-0.rc:6379", "rc-1.rc:6379"]}}
    },
    "memory": {"ratelimit": {"backend": "memory", "replicaCount": 1}},
    "hpa": {
        svc: {"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80}}
        for svc in ("authz", "ratelimit", "webhook", "meshCA")
    },
    "service-monitor": {"metrics": {"serviceMonitor": {"enabled": True}}},
    "injection-off": {"webhook": {"injection": {"enabled": False}}},
    "validation-off": {"webhook": {"validation": {"enabled": False}}},
    "istio-operator": {
        "istio": {
            "registerProvider": {"enabled": True, "format": "IstioOperator"},
            "rateLimitEnvoyFilter": {"enabled": True},
        }
    },
    "istio-configmap-http": {
        "istio": {"registerProvider": {"enabled": True}, "providerFlavor": "http"}
    },
    "hard-ha-digest": {
        "highAvailability": {"podAntiAffinity": "hard"},
        "image": {"digest": "sha256:" + "ab" * 32},
        "authz": {"podDisruptionBudget": {"maxUnavailable": "50%"}},
    },
    "mesh-ca-existing": {"meshCA": {"existingSecret": "corp-mesh-ca", "publishRootCert": False}},
    "ca-only": {
        "authz": {"enabled": False},
        "ratelimit": {"enabled": False},
        "webhook": {"enabled": False},
        "certManager": {"enabled": True},
    },
    "webhook-only": {"authz": {"enabled": False}, "ratelimit": {"enabled": False}},
    "nothing": {
        "authz": {"enabled": False},
        "ratelimit": {"enabled": False},
        "webhook": {"enabled": False},
        "meshCA": {"enabled": False},
        "metrics": {"dashboard": {"enabled": False}},
        "tests": {"enabled": False},
    },
}
