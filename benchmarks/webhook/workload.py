"""The benchmark's admission mix and its analyze corpus.

Three objects the size users actually apply: a VirtualService with 10 HTTP routes (URI, header
and regex matches, weighted subsets, retries, timeouts, a fault), a DestinationRule with 5
subsets each overriding the traffic policy, and an AuthorizationPolicy with 10 rules. Each one
is valid (the webhook allows it) so every review runs every check. Reviews are encoded once,
with a uid placeholder the load client fills with a fresh uid per request.
"""

from __future__ import annotations

import json
from typing import Any

NAMESPACE = "shop"
HOST = "reviews.shop.svc.cluster.local"
SUBSETS = ("v1", "v2", "v3", "v4", "v5")


def virtual_service(name: str = "reviews", routes: int = 10) -> dict[str, Any]:
    http: list[dict[str, Any]] = []
    for n in range(routes - 1):
        subset = SUBSETS[n % len(SUBSETS)]
        other = SUBSETS[(n + 1) % len(SUBSETS)]
        http.append(
            {
                "name": f"route-{n}",
                "match": [
                    {
                        "uri": {"prefix": f"/{name}/v{n}/items"},
                        "headers": {"x-tenant": {"exact": f"t{n}"}},
                    },
                    {"uri": {"regex": f"^/{name}/v{n}/[a-z]+/[0-9]+$"}, "method": {"exact": "GET"}},
                ],
                "route": [
                    {
                        "destination": {"host": HOST, "subset": subset, "port": {"number": 9080}},
                        "weight": 90,
                    },
                    {
                        "destination": {"host": HOST, "subset": other, "port": {"number": 9080}},
                        "weight": 10,
                    },
                ],
                "timeout": "3s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx,reset"},
                "headers": {"request": {"set": {"x-route": f"route-{n}"}}},
            }
        )
    http.append(
        {
            "name": "default",
            "route": [{"destination": {"host": HOST, "subset": "v1"}}],
            "fault": {"delay": {"percentage": {"value": 0.1}, "fixedDelay": "5s"}},
        }
    )
    return _object(
        "networking.istio.io/v1",
        "VirtualService",
        name,
        {"hosts": [HOST], "gateways": ["mesh"], "http": http},
    )


def destination_rule(name: str = "reviews") -> dict[str, Any]:
    subsets = [
        {
            "name": subset,
            "labels": {"app": "reviews", "version": subset},
            "trafficPolicy": {
                "loadBalancer": {"simple": "LEAST_REQUEST"},
                "connectionPool": {
                    "http": {"http1MaxPendingRequests": 100, "maxRequestsPerConnection": 10}
                },
            },
        }
        for subset in SUBSETS
    ]
    spec = {
        "host": HOST,
        "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"},
            "connectionPool": {"tcp": {"maxConnections": 100, "connectTimeout": "30ms"}},
            "outlierDetection": {
                "consecutive5xxErrors": 7,
                "interval": "5m",
                "baseEjectionTime": "15m",
            },
        },
        "subsets": subsets,
    }
    return _object("networking.istio.io/v1", "DestinationRule", name, spec)


def authorization_policy(name: str = "reviews-viewer", rules: int = 10) -> dict[str, Any]:
    spec_rules = [
        {
            "from": [
                {"source": {"principals": [f"cluster.local/ns/{NAMESPACE}/sa/client-{n}"]}},
                {"source": {"namespaces": ["frontend", "batch"], "ipBlocks": ["10.0.0.0/8"]}},
            ],
            "to": [
                {
                    "operation": {
                        "methods": ["GET", "HEAD"],
                        "paths": [f"/{name}/v{n}/*"],
                        "ports": ["9080"],
                    }
                }
            ],
            "when": [
                {"key": "request.headers[x-tenant]", "values": [f"t{n}"]},
                {"key": "source.ip", "notValues": ["10.1.2.3"]},
            ],
        }
        for n in range(rules)
    ]
    spec = {"selector": {"matchLabels": {"app": "reviews"}}, "action": "ALLOW", "rules": spec_rules}
    return _object("security.istio.io/v1", "AuthorizationPolicy", name, spec)


def _object(api_version: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "reviews"}},
        "spec": spec,
    }


def mix(variants: int = 1) -> list[dict[str, Any]]:
    """``variants`` objects of each kind, interleaved (VS, DR, AP, VS, ...). Variants differ in
    name and paths (so in their regexes), as a cluster's many services do."""
    objects: list[dict[str, Any]] = []
    for index in range(variants):
        name = f"reviews-{index}"
        objects += [virtual_service(name), destination_rule(name), authorization_policy(name)]
    return objects


def review(obj: dict[str, Any], uid: str, operation: str = "CREATE") -> bytes:
    """An AdmissionReview v1 as the API server sends it (object plus request metadata)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    request = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "name": obj["metadata"]["name"],
        "namespace": NAMESPACE,
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(body, separators=(",", ":")).encode()


def analyze_corpus(resources: int = 1000) -> str:
    """``resources`` objects as multi-document YAML: per service a Deployment, a Service, a
    VirtualService, a DestinationRule and an AuthorizationPolicy, so analyzers cross-check."""
    import yaml

    docs: list[dict[str, Any]] = []
    services = resources // 5
    for n in range(services):
        name = f"svc-{n}"
        host = f"{name}.{NAMESPACE}.svc.cluster.local"
        labels = {"app": name}
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": {**labels, "version": "v1"}},
                        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
                    },
                },
            }
        )
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 9080}]},
            }
        )
        vs = virtual_service(name, routes=3)
        for route in vs["spec"]["http"]:
            for dest in route["route"]:
                dest["destination"]["host"] = host
                dest["destination"]["subset"] = "v1"
        vs["spec"]["hosts"] = [host]
        docs.append(vs)
        dr = destination_rule(name)
        dr["spec"]["host"] = host
        dr["spec"]["subsets"] = [{"name": "v1", "labels": {**labels, "version": "v1"}}]
        docs.append(dr)
        ap = authorization_policy(f"{name}-viewer", rules=3)
        ap["spec"]["selector"] = {"matchLabels": labels}
        docs.append(ap)
    return yaml.safe_dump_all(docs, sort_keys=False)
