"""Audit of the validators against webhook-semantics.md sections 2-4, one row per table line.

Each row is a minimal object and the verdict Istio's webhook gives it: ``allow`` (no finding at
all), ``warn`` (admitted, a warning at the path) or ``deny`` (an error at the path). The rows go
through :func:`meshguard.registry.default_registry`, as every entry point does; section 2 goes
through the AdmissionReview decision function.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from meshguard.common.findings import Finding
from meshguard.registry import default_registry
from meshguard.webhook import admission
from tests.webhook.support import make

NS = "shop"


@dataclasses.dataclass(frozen=True)
class Row:
    kind: str
    spec: dict[str, Any]
    verdict: str  # allow | warn | deny
    path: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def allow(kind: str, spec: dict[str, Any], **meta: Any) -> Row:
    return Row(kind, spec, "allow", meta=meta)


def deny(kind: str, spec: dict[str, Any], path: str, **meta: Any) -> Row:
    return Row(kind, spec, "deny", path, meta)


def warn(kind: str, spec: dict[str, Any], path: str, **meta: Any) -> Row:
    return Row(kind, spec, "warn", path, meta)


def findings_of(row: Row) -> list[Finding]:
    meta = dict(row.meta)
    resource = make(row.kind, row.spec, namespace=meta.pop("namespace", NS), **meta)
    return default_registry().validate(resource)


def assert_row(row: Row) -> None:
    found = findings_of(row)
    errs = [f for f in found if f.is_error]
    warns = [f for f in found if not f.is_error]
    shown = "\n".join(str(f) for f in found)
    if row.verdict == "allow":
        assert not found, f"expected a clean allow, got:\n{shown}"
    elif row.verdict == "warn":
        assert not errs, f"expected admission with a warning, got errors:\n{shown}"
        assert any(f.path == row.path for f in warns), f"no warning at {row.path}:\n{shown}"
    else:
        assert any(f.path == row.path for f in errs), f"no error at {row.path}:\n{shown}"


def ids(rows: list[Row]) -> list[str]:
    return [f"{r.kind}-{r.verdict}-{r.path or i}" for i, r in enumerate(rows)]


# ---- minimal objects -----------------------------------------------------------------------


def vs(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hosts": ["reviews"],
        "http": [{"route": [{"destination": {"host": "reviews"}}]}],
    }
    return {**base, **spec}


def vs_http(**rule: Any) -> dict[str, Any]:
    return vs(http=[{"route": [{"destination": {"host": "reviews"}}], **rule}])


def dr(**spec: Any) -> dict[str, Any]:
    return {"host": "reviews.shop.svc.cluster.local", **spec}


def tp(**policy: Any) -> dict[str, Any]:
    return dr(trafficPolicy=policy)


def gw_server(**server: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "port": {"number": 80, "name": "http", "protocol": "HTTP"},
        "hosts": ["*.example.com"],
    }
    return {"selector": {"istio": "ingressgateway"}, "servers": [{**base, **server}]}


def https(**tls: Any) -> dict[str, Any]:
    return gw_server(port={"number": 443, "name": "https", "protocol": "HTTPS"}, tls=tls)


def se(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hosts": ["api.example.com"],
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
        "resolution": "DNS",
        "location": "MESH_EXTERNAL",
    }
    return {**base, **spec}


def sidecar(**spec: Any) -> dict[str, Any]:
    return {"egress": [{"hosts": ["./*"]}], **spec}


def egress_hosts(*hosts: str) -> dict[str, Any]:
    return {"egress": [{"hosts": list(hosts)}]}


def ingress(**listener: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "port": {"number": 9080, "name": "http", "protocol": "HTTP"},
        "defaultEndpoint": "127.0.0.1:8080",
    }
    return {"ingress": [{**base, **listener}]}


def ap_rule(**rule: Any) -> dict[str, Any]:
    return {"rules": [rule]}


def source(**fields: Any) -> dict[str, Any]:
    return ap_rule(**{"from": [{"source": fields}]})


def operation(**fields: Any) -> dict[str, Any]:
    return ap_rule(to=[{"operation": fields}])


def when(key: str, *values: str) -> dict[str, Any]:
    return ap_rule(when=[{"key": key, "values": list(values)}])


def jwt(**rule: Any) -> dict[str, Any]:
    return {"jwtRules": [{"issuer": "https://issuer.example.com", **rule}]}


LONG_LABEL = "a" * 64
REGEX_1025 = "a" * 1025


# ---- section 3: shared primitives ----------------------------------------------------------

PRIMITIVES = [
    # Host (FQDN): 1-255 chars, DNS-1123 labels, uppercase accepted, trailing dot, numeric TLD.
    allow("DestinationRule", dr(host="Reviews.Shop.svc.cluster.local")),
    allow("DestinationRule", dr(host="reviews.shop.svc.cluster.local.")),
    deny("DestinationRule", dr(host="reviews.123"), "spec.host"),
    deny("DestinationRule", dr(host=f"{LONG_LABEL}.example.com"), "spec.host"),
    deny("DestinationRule", dr(host="-reviews.example.com"), "spec.host"),
    deny("DestinationRule", dr(host="reviews-.example.com"), "spec.host"),
    deny("DestinationRule", dr(host="a_b.example.com"), "spec.host"),
    deny("DestinationRule", dr(host=".".join(["abcdefg"] * 33)), "spec.host"),
    # Wildcard host: first label *, *foo, *-foo or a normal label.
    allow("DestinationRule", dr(host="*.example.com")),
    allow("DestinationRule", dr(host="*foo.example.com")),
    allow("VirtualService", vs(hosts=["*-api.example.com"])),
    deny("DestinationRule", dr(host="foo.*.example.com"), "spec.host"),
    deny("DestinationRule", dr(host="f*o.example.com"), "spec.host"),
    # Partial wildcard: E on Gateway and Sidecar, W on ServiceEntry (unless DYNAMIC_DNS).
    deny("Gateway", gw_server(hosts=["*-api.example.com"]), "spec.servers[0].hosts[0]"),
    deny("Sidecar", egress_hosts("./*-api.example.com"), "spec.egress[0].hosts[0]"),
    warn("ServiceEntry", se(hosts=["*-api.example.com"], resolution="NONE"), "spec.hosts[0]"),
    # Short names: fine on VirtualService hosts/destinations, E on Gateway and Sidecar egress.
    allow("VirtualService", vs(hosts=["reviews"])),
    deny("Gateway", gw_server(hosts=["reviews"]), "spec.servers[0].hosts[0]"),
    deny("Gateway", gw_server(hosts=["prod/reviews"]), "spec.servers[0].hosts[0]"),
    deny("Sidecar", egress_hosts("./reviews"), "spec.egress[0].hosts[0]"),
    # IP as host: accepted on VirtualService and Gateway hosts; an IP SNI host is a warning.
    allow("VirtualService", vs(hosts=["10.0.0.1"])),
    allow("Gateway", gw_server(hosts=["10.0.0.1"])),
    warn(
        "VirtualService",
        {
            "hosts": ["10.0.0.1"],
            "gateways": ["edge"],
            "tls": [
                {
                    "match": [{"sniHosts": ["10.0.0.1"]}],
                    "route": [{"destination": {"host": "reviews"}}],
                }
            ],
        },
        "spec.tls[0].match[0].sniHosts[0]",
    ),
    # namespace/host: required on Sidecar egress, optional on Gateway; ns is *, . or a label.
    deny("Sidecar", egress_hosts("api.example.com"), "spec.egress[0].hosts[0]"),
    allow("Gateway", gw_server(hosts=["api.example.com", "./a.example.com", "*/b.example.com"])),
    allow("Gateway", gw_server(hosts=["prod/api.example.com"])),
    deny("Gateway", gw_server(hosts=["Prod_1/api.example.com"]), "spec.servers[0].hosts[0]"),
    deny("Gateway", gw_server(hosts=["~prod/api.example.com"]), "spec.servers[0].hosts[0]"),
    allow("Sidecar", egress_hosts("~prod/api.example.com", "*/b.example.com")),
    deny("Gateway", gw_server(hosts=["prod/*-api.example.com"]), "spec.servers[0].hosts[0]"),
    # Port: 1-65535; 0 only with a unix bind (Gateway, Sidecar egress).
    deny(
        "Gateway",
        gw_server(port={"number": 0, "name": "h", "protocol": "HTTP"}),
        "spec.servers[0].port.number",
    ),
    deny(
        "Gateway",
        gw_server(port={"number": 65536, "name": "h", "protocol": "HTTP"}),
        "spec.servers[0].port.number",
    ),
    allow(
        "Gateway",
        gw_server(
            port={"number": 0, "name": "h", "protocol": "HTTP"}, bind="unix:///var/run/gw.sock"
        ),
    ),
    allow(
        "Sidecar",
        {
            "egress": [
                {
                    "port": {"number": 0, "name": "u", "protocol": "HTTP"},
                    "bind": "unix:///var/run/app.sock",
                    "hosts": ["./*"],
                }
            ]
        },
    ),
    deny(
        "Sidecar",
        {"egress": [{"port": {"number": 0, "name": "u", "protocol": "HTTP"}, "hosts": ["./*"]}]},
        "spec.egress[0].port.number",
    ),
    deny(
        "ServiceEntry",
        se(ports=[{"number": 70000, "name": "tls", "protocol": "TLS"}]),
        "spec.ports[0].number",
    ),
    # Port name: a DNS-1123 label; required on Gateway server ports.
    deny(
        "Gateway",
        gw_server(port={"number": 80, "name": "http_web", "protocol": "HTTP"}),
        "spec.servers[0].port.name",
    ),
    deny(
        "Gateway", gw_server(port={"number": 80, "protocol": "HTTP"}), "spec.servers[0].port.name"
    ),
    deny(
        "ServiceEntry",
        se(ports=[{"number": 443, "name": "tls_x", "protocol": "TLS"}]),
        "spec.ports[0].name",
    ),
    # Protocol: case-insensitive list; empty means sniffing where optional.
    allow("Gateway", gw_server(port={"number": 80, "name": "g", "protocol": "grpc-web"})),
    allow(
        "ServiceEntry",
        se(
            ports=[{"number": 27017, "name": "mongo", "protocol": "mongo"}],
            hosts=["db.example.com"],
            addresses=["10.1.0.1"],
        ),
    ),
    deny(
        "Gateway",
        gw_server(port={"number": 21, "name": "ftp", "protocol": "FTP"}),
        "spec.servers[0].port.protocol",
    ),
    allow("Sidecar", {"egress": [{"port": {"number": 8080, "name": "p"}, "hosts": ["./*"]}]}),
    # Duration: >= 1ms and whole milliseconds.
    allow("DestinationRule", tp(connectionPool={"tcp": {"connectTimeout": "1ms"}})),
    allow("DestinationRule", tp(connectionPool={"tcp": {"connectTimeout": "1.5s"}})),
    allow("DestinationRule", tp(connectionPool={"tcp": {"connectTimeout": "1h2m"}})),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"connectTimeout": "0.5ms"}}),
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"connectTimeout": "1500us"}}),
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"connectTimeout": "10"}}),
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    ),
    deny("VirtualService", vs_http(timeout="0s"), "spec.http[0].timeout"),
    # Percent: int 0..100; Percent{value} 0 or within [0.0001, 100].
    allow("DestinationRule", tp(outlierDetection={"maxEjectionPercent": 100})),
    deny(
        "DestinationRule",
        tp(outlierDetection={"maxEjectionPercent": 101}),
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
    ),
    allow(
        "VirtualService", vs_http(fault={"abort": {"httpStatus": 503, "percentage": {"value": 0}}})
    ),
    allow(
        "VirtualService",
        vs_http(fault={"abort": {"httpStatus": 503, "percentage": {"value": 0.0001}}}),
    ),
    deny(
        "VirtualService",
        vs_http(fault={"abort": {"httpStatus": 503, "percentage": {"value": 0.00001}}}),
        "spec.http[0].fault.abort.percentage.value",
    ),
    deny(
        "VirtualService",
        vs_http(fault={"abort": {"httpStatus": 503, "percentage": {"value": 100.5}}}),
        "spec.http[0].fault.abort.percentage.value",
    ),
    # Labels: optional DNS-subdomain prefix, qualified name; value <= 63, alnum at both ends.
    allow(
        "DestinationRule",
        dr(
            subsets=[{"name": "v1", "labels": {"app.kubernetes.io/version": "v1.2_3", "empty": ""}}]
        ),
    ),
    deny(
        "DestinationRule",
        dr(subsets=[{"name": "v1", "labels": {"-bad": "x"}}]),
        "spec.subsets[0].labels[-bad]",
    ),
    deny(
        "DestinationRule",
        dr(subsets=[{"name": "v1", "labels": {"Example.com/app": "x"}}]),
        "spec.subsets[0].labels[Example.com/app]",
    ),
    deny(
        "DestinationRule",
        dr(subsets=[{"name": "v1", "labels": {"app": LONG_LABEL}}]),
        "spec.subsets[0].labels[app]",
    ),
    deny(
        "DestinationRule",
        dr(subsets=[{"name": "v1", "labels": {"app": "-x"}}]),
        "spec.subsets[0].labels[app]",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"sourceLabels": {"bad key": "x"}}]),
        "spec.http[0].match[0].sourceLabels[bad key]",
    ),
    deny(
        "ServiceEntry",
        se(resolution="STATIC", endpoints=[{"address": "10.0.0.1", "labels": {"app": "x_"}}]),
        "spec.endpoints[0].labels[app]",
    ),
    # Workload selector: non-empty keys, no '*'; an empty selector is a warning.
    deny(
        "Sidecar", sidecar(workloadSelector={"labels": {"": "x"}}), "spec.workloadSelector.labels[]"
    ),
    deny(
        "Sidecar",
        sidecar(workloadSelector={"labels": {"app": "*"}}),
        "spec.workloadSelector.labels[app]",
    ),
    deny(
        "Sidecar",
        sidecar(workloadSelector={"labels": {"ap*": "x"}}),
        "spec.workloadSelector.labels[ap*]",
    ),
    warn("Sidecar", sidecar(workloadSelector={}), "spec.workloadSelector"),
    warn("PeerAuthentication", {"selector": {"matchLabels": {}}}, "spec.selector"),
    warn("AuthorizationPolicy", {"selector": {}}, "spec.selector"),
    deny(
        "AuthorizationPolicy",
        {"selector": {"matchLabels": {"app": "*"}}},
        "spec.selector.matchLabels[app]",
    ),
    # targetRef / targetRefs: name required, namespace empty, supported kinds, one of three.
    allow(
        "AuthorizationPolicy",
        {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}},
    ),
    allow(
        "AuthorizationPolicy",
        {
            "targetRefs": [
                {"group": "", "kind": "Service", "name": "web"},
                {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "api"},
                {"group": "gateway.networking.k8s.io", "kind": "GatewayClass", "name": "istio"},
            ]
        },
    ),
    deny(
        "AuthorizationPolicy",
        {"targetRef": {"group": "", "kind": "Service"}},
        "spec.targetRef.name",
    ),
    deny(
        "AuthorizationPolicy",
        {"targetRef": {"group": "", "kind": "Service", "name": "w", "namespace": "other"}},
        "spec.targetRef.namespace",
    ),
    deny(
        "RequestAuthentication",
        {"targetRef": {"group": "apps", "kind": "Deployment", "name": "w"}},
        "spec.targetRef.kind",
    ),
    # exportTo: ., * or a label; no duplicates ('.' == own namespace); '*' alone; '~' only SE.
    allow("DestinationRule", dr(exportTo=["*"])),
    allow("VirtualService", vs(exportTo=[".", "other"])),
    deny("VirtualService", vs(exportTo=[".", NS]), "spec.exportTo[1]"),
    deny("VirtualService", vs(exportTo=["other", "other"]), "spec.exportTo[1]"),
    deny("DestinationRule", dr(exportTo=["*", "."]), "spec.exportTo"),
    deny("DestinationRule", dr(exportTo=["Bad_ns"]), "spec.exportTo[0]"),
    deny("DestinationRule", dr(exportTo=["~"]), "spec.exportTo[0]"),
    allow("ServiceEntry", se(exportTo=["~"])),
    deny("ServiceEntry", se(exportTo=["~", "."]), "spec.exportTo"),
    # Header names: RFC 7230 tokens, HTTP/2 pseudo-headers, JWT claims (gateway-only VS).
    allow(
        "VirtualService",
        vs_http(match=[{"headers": {":authority": {"exact": "a"}, "x-b3_id": {"prefix": "1"}}}]),
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"headers": {"bad header": {"exact": "a"}}}]),
        "spec.http[0].match[0].headers[bad header]",
    ),
    allow(
        "VirtualService",
        {
            "hosts": ["reviews.example.com"],
            "gateways": ["edge"],
            "http": [
                {
                    "match": [
                        {
                            "headers": {
                                "@request.auth.claims.group": {"exact": "a"},
                                "@request.auth.claims[nested][key]": {"exact": "b"},
                            }
                        }
                    ],
                    "route": [{"destination": {"host": "reviews"}}],
                }
            ],
        },
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"headers": {"@request.auth.claims.g": {"exact": "a"}}}]),
        "spec.http[0].match[0].headers[@request.auth.claims.g]",
    ),
    # Header operations.
    allow(
        "VirtualService",
        vs_http(
            headers={"request": {"set": {":authority": "a.example.com", "x-a": "%REQ(x-b)% 100%%"}}}
        ),
    ),
    deny(
        "VirtualService",
        vs_http(headers={"request": {"set": {":path": "/x"}}}),
        "spec.http[0].headers.request.set[:path]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"request": {"add": {":method": "GET"}}}),
        "spec.http[0].headers.request.add[:method]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"request": {"remove": [":authority"]}}),
        "spec.http[0].headers.request.remove[0]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"request": {"remove": ["Host"]}}),
        "spec.http[0].headers.request.remove[0]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"response": {"set": {"host": "a"}}}),
        "spec.http[0].headers.response.set[host]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"response": {"add": {":status": "200"}}}),
        "spec.http[0].headers.response.add[:status]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"response": {"set": {"x-a": "a\x01b"}}}),
        "spec.http[0].headers.response.set[x-a]",
    ),
    deny(
        "VirtualService",
        vs_http(headers={"response": {"set": {"x-a": "100%"}}}),
        "spec.http[0].headers.response.set[x-a]",
    ),
    # String match: empty prefix is E except on uri; regex non-empty, RE2, <= 1024.
    allow("VirtualService", vs_http(match=[{"uri": {"prefix": ""}}])),
    deny(
        "VirtualService",
        vs_http(match=[{"headers": {"x-a": {"prefix": ""}}}]),
        "spec.http[0].match[0].headers[x-a].prefix",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"queryParams": {"q": {"prefix": ""}}}]),
        "spec.http[0].match[0].queryParams[q].prefix",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"scheme": {"prefix": ""}}]),
        "spec.http[0].match[0].scheme.prefix",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"method": {"prefix": ""}}]),
        "spec.http[0].match[0].method.prefix",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"authority": {"prefix": ""}}]),
        "spec.http[0].match[0].authority.prefix",
    ),
    deny(
        "VirtualService", vs_http(match=[{"uri": {"regex": ""}}]), "spec.http[0].match[0].uri.regex"
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"uri": {"regex": "/(?=a)"}}]),
        "spec.http[0].match[0].uri.regex",
    ),
    deny(
        "VirtualService",
        vs_http(match=[{"uri": {"regex": REGEX_1025}}]),
        "spec.http[0].match[0].uri.regex",
    ),
    allow("VirtualService", vs_http(match=[{"uri": {"regex": "/api/v[0-9]+/.*"}}])),
    # Metadata: istio.io/dry-run only on AuthorizationPolicy; internal.istio.io/* rejected;
    # Gateway metadata.name a DNS label.
    deny(
        "DestinationRule",
        dr(),
        "metadata.annotations[istio.io/dry-run]",
        annotations={"istio.io/dry-run": "true"},
    ),
    deny(
        "RequestAuthentication",
        jwt(),
        "metadata.annotations[istio.io/dry-run]",
        annotations={"istio.io/dry-run": "true"},
    ),
    deny(
        "Gateway",
        gw_server(),
        "metadata.annotations[internal.istio.io/webhook-always-reject]",
        annotations={"internal.istio.io/webhook-always-reject": "true"},
    ),
    deny(
        "VirtualService",
        vs(),
        "metadata.annotations[internal.istio.io/parents]",
        annotations={"internal.istio.io/parents": "x"},
    ),
    deny(
        "AuthorizationPolicy",
        {},
        "metadata.annotations[internal.istio.io/parent-namespace]",
        annotations={"internal.istio.io/parent-namespace": "x"},
    ),
    deny(
        "RequestAuthentication",
        jwt(),
        "metadata.annotations[internal.istio.io/parents]",
        annotations={"internal.istio.io/parents": "x"},
    ),
    deny("Gateway", gw_server(), "metadata.name", name="edge.gateway"),
    allow("VirtualService", vs(), name="reviews.route"),
]


@pytest.mark.parametrize("row", PRIMITIVES, ids=ids(PRIMITIVES))
def test_shared_primitives(row: Row) -> None:
    assert_row(row)


# ---- section 4.2: DestinationRule ----------------------------------------------------------

TLS_CERTS = {"clientCertificate": "/c.pem", "privateKey": "/k.pem"}
DESTINATION_RULE = [
    deny("DestinationRule", dr(host="bad host"), "spec.host"),
    allow(
        "DestinationRule", dr(subsets=[{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2"}])
    ),
    deny("DestinationRule", dr(subsets=[{"name": "v1"}, {"name": "v1"}]), "spec.subsets[1].name"),
    deny("DestinationRule", dr(subsets=[{"name": ""}]), "spec.subsets[0].name"),
    deny("DestinationRule", dr(subsets=[{"name": "V_1"}]), "spec.subsets[0].name"),
    deny(
        "DestinationRule",
        dr(
            subsets=[
                {
                    "name": "v1",
                    "trafficPolicy": {"connectionPool": {"tcp": {"connectTimeout": "0s"}}},
                }
            ]
        ),
        "spec.subsets[0].trafficPolicy.connectionPool.tcp.connectTimeout",
    ),
    allow(
        "DestinationRule",
        dr(
            subsets=[
                {"name": "v1", "trafficPolicy": {"outlierDetection": {"consecutiveErrors": 5}}}
            ]
        ),
    ),
    deny("DestinationRule", tp(), "spec.trafficPolicy"),
    allow("DestinationRule", tp(retryBudget={"percent": 20, "minRetryConcurrency": 3})),
    deny(
        "DestinationRule",
        tp(
            tunnel={"targetHost": "proxy.example.com", "targetPort": 3128},
            proxyProtocol={"version": "V1"},
        ),
        "spec.trafficPolicy.proxyProtocol",
    ),
    # connectionPool
    deny("DestinationRule", tp(connectionPool={}), "spec.trafficPolicy.connectionPool"),
    *[
        deny(
            "DestinationRule",
            tp(connectionPool={"http": {key: -1}}),
            f"spec.trafficPolicy.connectionPool.http.{key}",
        )
        for key in (
            "http1MaxPendingRequests",
            "http2MaxRequests",
            "maxRequestsPerConnection",
            "maxRetries",
            "maxConcurrentStreams",
        )
    ],
    deny(
        "DestinationRule",
        tp(connectionPool={"http": {"idleTimeout": "0s"}}),
        "spec.trafficPolicy.connectionPool.http.idleTimeout",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"http": {"useClientProtocol": True, "h2UpgradePolicy": "UPGRADE"}}),
        "spec.trafficPolicy.connectionPool.http.useClientProtocol",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"http": {"http2KeepAlive": {"interval": "10s"}}}),
        "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
    ),
    allow(
        "DestinationRule",
        tp(connectionPool={"http": {"http2KeepAlive": {"interval": "10s", "timeout": "3s"}}}),
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"maxConnections": -1}}),
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    ),
    allow("DestinationRule", tp(connectionPool={"tcp": {"idleTimeout": "0s"}})),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"maxConnectionDuration": "0s"}}),
        "spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"tcpKeepalive": {"time": "0.1ms"}}}),
        "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
    ),
    deny(
        "DestinationRule",
        tp(connectionPool={"tcp": {"tcpKeepalive": {"interval": "x"}}}),
        "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
    ),
    # outlierDetection
    deny(
        "DestinationRule",
        tp(outlierDetection={"baseEjectionTime": "0s"}),
        "spec.trafficPolicy.outlierDetection.baseEjectionTime",
    ),
    deny(
        "DestinationRule",
        tp(outlierDetection={"interval": "1.5ms"}),
        "spec.trafficPolicy.outlierDetection.interval",
    ),
    deny(
        "DestinationRule",
        tp(outlierDetection={"minHealthPercent": -1}),
        "spec.trafficPolicy.outlierDetection.minHealthPercent",
    ),
    deny(
        "DestinationRule",
        tp(outlierDetection={"consecutiveLocalOriginFailures": 5}),
        "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
    ),
    allow(
        "DestinationRule",
        tp(
            outlierDetection={
                "consecutiveLocalOriginFailures": 5,
                "splitExternalLocalOriginErrors": True,
            }
        ),
    ),
    warn(
        "DestinationRule",
        tp(outlierDetection={"consecutiveErrors": 5}),
        "spec.trafficPolicy.outlierDetection.consecutiveErrors",
    ),
    # loadBalancer
    deny(
        "DestinationRule",
        tp(loadBalancer={"consistentHash": {"httpCookie": {"ttl": "10s"}}}),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "consistentHash": {
                    "httpCookie": {"name": "c", "attributes": [{"name": "a"}, {"name": "a"}]}
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "consistentHash": {"httpCookie": {"name": "c", "attributes": [{"name": ""}]}}
            }
        ),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[0].name",
    ),
    warn(
        "DestinationRule",
        tp(loadBalancer={"consistentHash": {"useSourceIp": True, "minimumRingSize": 1024}}),
        "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "consistentHash": {
                    "useSourceIp": True,
                    "minimumRingSize": 1024,
                    "ringHash": {"minimumRingSize": 1024},
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.consistentHash.ringHash",
    ),
    allow(
        "DestinationRule",
        tp(loadBalancer={"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65537}}}),
    ),
    deny(
        "DestinationRule",
        tp(loadBalancer={"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65536}}}),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    ),
    deny(
        "DestinationRule",
        tp(loadBalancer={"consistentHash": {"useSourceIp": True, "maglev": {}}}),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 5000011}}}
        ),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {"enabled": True},
                "zoneAwareLbSetting": {"enabled": True},
            }
        ),
        "spec.trafficPolicy.loadBalancer.zoneAwareLbSetting",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [{"from": "us-west/*", "to": {"us-west/zone1/*": 100}}],
                    "failover": [{"from": "us-west", "to": "us-east"}],
                }
            },
            outlierDetection={"interval": "1s"},
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover",
    ),
    allow(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [
                        {
                            "from": "us-west/zone1/*",
                            "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20},
                        }
                    ]
                }
            }
        ),
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [
                        {"from": "us-west/*", "to": {"us-west/zone1/*": 60, "us-west/zone2/*": 30}}
                    ]
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [
                        {"from": "us-west/*", "to": {"us-west/zone1/*": 0, "us-west/zone2/*": 100}}
                    ]
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[us-west/zone1/*]",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [{"from": "us-*/zone1", "to": {"us-west": 100}}]
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [
                        {"from": "us-west/*", "to": {"us-west": 100}},
                        {"from": "us-west/zone1", "to": {"us-west": 100}},
                    ]
                }
            }
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {"failover": [{"from": "us-west", "to": "us-west"}]}
            },
            outlierDetection={"interval": "1s"},
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "localityLbSetting": {"failover": [{"from": "us-west/zone1", "to": "us-east"}]}
            },
            outlierDetection={"interval": "1s"},
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].from",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={"localityLbSetting": {"failover": [{"from": "us-west", "to": "us-*"}]}},
            outlierDetection={"interval": "1s"},
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to",
    ),
    warn(
        "DestinationRule",
        tp(
            loadBalancer={"localityLbSetting": {"failover": [{"from": "us-west", "to": "us-east"}]}}
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting",
    ),
    warn(
        "DestinationRule",
        tp(
            loadBalancer={
                "simple": "ROUND_ROBIN",
                "failoverPriority": ["topology.istio.io/network"],
            }
        ),
        "spec.trafficPolicy.loadBalancer.failoverPriority",
    ),
    allow(
        "DestinationRule",
        tp(
            loadBalancer={
                "simple": "LEAST_REQUEST",
                "warmup": {"duration": "60s", "minimumPercent": 10, "aggression": 1.5},
            }
        ),
    ),
    deny(
        "DestinationRule",
        tp(loadBalancer={"simple": "LEAST_REQUEST", "warmup": {}}),
        "spec.trafficPolicy.loadBalancer.warmup.duration",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={
                "simple": "LEAST_REQUEST",
                "warmup": {"duration": "60s", "minimumPercent": 101},
            }
        ),
        "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
    ),
    deny(
        "DestinationRule",
        tp(
            loadBalancer={"simple": "LEAST_REQUEST", "warmup": {"duration": "60s", "aggression": 0}}
        ),
        "spec.trafficPolicy.loadBalancer.warmup.aggression",
    ),
    # tls (client)
    deny(
        "DestinationRule",
        tp(tls={"mode": "SIMPLE", "credentialName": "configmap://other/ca"}),
        "spec.trafficPolicy.tls.credentialName",
    ),
    allow("DestinationRule", tp(tls={"mode": "SIMPLE", "credentialName": f"configmap://{NS}/ca"})),
    deny(
        "DestinationRule",
        tp(tls={"mode": "SIMPLE", "insecureSkipVerify": True, "caCertificates": "/ca.pem"}),
        "spec.trafficPolicy.tls.caCertificates",
    ),
    deny(
        "DestinationRule",
        tp(
            tls={"mode": "SIMPLE", "insecureSkipVerify": True, "subjectAltNames": ["a.example.com"]}
        ),
        "spec.trafficPolicy.tls.subjectAltNames",
    ),
    deny(
        "DestinationRule",
        tp(tls={"mode": "SIMPLE", "insecureSkipVerify": True, "credentialName": "cred"}),
        "spec.trafficPolicy.tls.credentialName",
    ),
    deny(
        "DestinationRule",
        tp(tls={"mode": "MUTUAL", "credentialName": "cred", "caCrl": "/crl.pem"}),
        "spec.trafficPolicy.tls.caCrl",
    ),
    deny(
        "DestinationRule",
        tp(tls={"mode": "SIMPLE", "credentialName": "cred", "caCertificates": "/ca.pem"}),
        "spec.trafficPolicy.tls.caCertificates",
    ),
    deny(
        "DestinationRule",
        tp(tls={"mode": "MUTUAL", "privateKey": "/k.pem"}),
        "spec.trafficPolicy.tls.clientCertificate",
    ),
    deny(
        "DestinationRule",
        tp(tls={"mode": "MUTUAL", "clientCertificate": "/c.pem"}),
        "spec.trafficPolicy.tls.privateKey",
    ),
    allow("DestinationRule", tp(tls={"mode": "MUTUAL", **TLS_CERTS, "caCertificates": "/ca.pem"})),
    allow("DestinationRule", tp(tls={"mode": "ISTIO_MUTUAL"})),
    # portLevelSettings
    deny(
        "DestinationRule",
        tp(portLevelSettings=[{"loadBalancer": {"simple": "RANDOM"}}]),
        "spec.trafficPolicy.portLevelSettings[0].port",
    ),
    deny(
        "DestinationRule",
        tp(portLevelSettings=[{"port": {"number": 80}}]),
        "spec.trafficPolicy.portLevelSettings[0]",
    ),
    allow(
        "DestinationRule",
        tp(portLevelSettings=[{"port": {"number": 80}, "loadBalancer": {"simple": "RANDOM"}}]),
    ),
    # tunnel / proxyProtocol
    allow(
        "DestinationRule",
        tp(tunnel={"protocol": "POST", "targetHost": "10.0.0.1", "targetPort": 8080}),
    ),
    deny(
        "DestinationRule",
        tp(tunnel={"protocol": "GET", "targetHost": "a.example.com", "targetPort": 8080}),
        "spec.trafficPolicy.tunnel.protocol",
    ),
    deny(
        "DestinationRule",
        tp(tunnel={"targetHost": "*.example.com", "targetPort": 8080}),
        "spec.trafficPolicy.tunnel.targetHost",
    ),
    deny(
        "DestinationRule",
        tp(tunnel={"targetHost": "a.example.com", "targetPort": 0}),
        "spec.trafficPolicy.tunnel.targetPort",
    ),
    allow("DestinationRule", tp(proxyProtocol={"version": "V2"})),
    deny(
        "DestinationRule",
        tp(proxyProtocol={"version": "V3"}),
        "spec.trafficPolicy.proxyProtocol.version",
    ),
    # exportTo with workloadSelector; workloadSelector rules
    allow("DestinationRule", dr(workloadSelector={"matchLabels": {"app": "web"}}, exportTo=["."])),
    deny(
        "DestinationRule",
        dr(workloadSelector={"matchLabels": {"app": "web"}}, exportTo=["other"]),
        "spec.exportTo[0]",
    ),
    deny(
        "DestinationRule",
        dr(workloadSelector={"matchLabels": {"app": "web"}}, exportTo=["*"]),
        "spec.exportTo[0]",
    ),
    deny(
        "DestinationRule",
        dr(workloadSelector={"matchLabels": {"app": "*"}}),
        "spec.workloadSelector.matchLabels[app]",
    ),
    warn("DestinationRule", dr(workloadSelector={}), "spec.workloadSelector"),
]


@pytest.mark.parametrize("row", DESTINATION_RULE, ids=ids(DESTINATION_RULE))
def test_destination_rule(row: Row) -> None:
    assert_row(row)


# ---- section 4.3: Gateway ------------------------------------------------------------------

CERT = {"serverCertificate": "/s.pem", "privateKey": "/k.pem"}
GATEWAY = [
    allow("Gateway", gw_server()),
    deny("Gateway", gw_server(), "metadata.name", name="Edge"),
    deny("Gateway", {"servers": []}, "spec.servers"),
    deny("Gateway", gw_server(hosts=[]), "spec.servers[0].hosts"),
    allow("Gateway", gw_server(hosts=["*"])),
    deny("Gateway", gw_server(hosts=["./*-x.example.com"]), "spec.servers[0].hosts[0]"),
    deny("Gateway", {"servers": [{"hosts": ["*.example.com"]}]}, "spec.servers[0].port"),
    deny(
        "Gateway",
        gw_server(port={"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 8080}),
        "spec.servers[0].port.targetPort",
    ),
    deny(
        "Gateway",
        {
            "servers": [
                gw_server()["servers"][0],
                {
                    **gw_server()["servers"][0],
                    "port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                },
            ]
        },
        "spec.servers[1].port.name",
    ),
    allow("Gateway", gw_server(bind="10.0.0.1")),
    deny("Gateway", gw_server(bind="localhost"), "spec.servers[0].bind"),
    deny(
        "Gateway",
        gw_server(bind="unix://relative.sock", port={"number": 0, "name": "u", "protocol": "HTTP"}),
        "spec.servers[0].bind",
    ),
    deny("Gateway", gw_server(bind="unix:///gw.sock"), "spec.servers[0].port.number"),
    deny(
        "Gateway",
        gw_server(port={"number": 443, "name": "https", "protocol": "HTTPS"}),
        "spec.servers[0].tls",
    ),
    deny(
        "Gateway",
        gw_server(port={"number": 443, "name": "tls", "protocol": "TLS"}),
        "spec.servers[0].tls",
    ),
    allow("Gateway", gw_server(tls={"httpsRedirect": True})),
    deny(
        "Gateway",
        gw_server(tls={"httpsRedirect": True, "mode": "SIMPLE", **CERT}),
        "spec.servers[0].tls",
    ),
    deny(
        "Gateway",
        gw_server(tls={"httpsRedirect": True, "credentialName": "c"}),
        "spec.servers[0].tls",
    ),
    deny(
        "Gateway",
        gw_server(
            port={"number": 31400, "name": "tcp", "protocol": "TCP"}, tls={"mode": "SIMPLE", **CERT}
        ),
        "spec.servers[0].tls",
    ),
    warn(
        "Gateway",
        https(mode="SIMPLE", credentialName="c", httpsRedirect=True),
        "spec.servers[0].tls.httpsRedirect",
    ),
    *[
        deny("Gateway", https(mode="ISTIO_MUTUAL", **{key: value}), f"spec.servers[0].tls.{key}")
        for key, value in (
            ("serverCertificate", "/s.pem"),
            ("privateKey", "/k.pem"),
            ("caCertificates", "/ca.pem"),
            ("credentialName", "c"),
            ("credentialNames", ["c"]),
            ("tlsCertificates", [CERT]),
        )
    ],
    allow("Gateway", https(mode="ISTIO_MUTUAL")),
    warn(
        "Gateway",
        https(mode="PASSTHROUGH", credentialName="c"),
        "spec.servers[0].tls.credentialName",
    ),
    warn(
        "Gateway", https(mode="AUTO_PASSTHROUGH", **CERT), "spec.servers[0].tls.serverCertificate"
    ),
    deny("Gateway", https(mode="SIMPLE", credentialName="c", **CERT), "spec.servers[0].tls"),
    deny(
        "Gateway",
        https(mode="SIMPLE", credentialName="c", credentialNames=["d"]),
        "spec.servers[0].tls",
    ),
    deny(
        "Gateway",
        https(mode="SIMPLE", credentialNames=["d"], tlsCertificates=[CERT]),
        "spec.servers[0].tls",
    ),
    deny("Gateway", https(mode="SIMPLE", tlsCertificates=[CERT], **CERT), "spec.servers[0].tls"),
    allow("Gateway", https(mode="SIMPLE", **CERT)),
    allow("Gateway", https(mode="SIMPLE", credentialNames=["rsa", "ecdsa"])),
    deny(
        "Gateway",
        https(mode="SIMPLE", serverCertificate="/s.pem"),
        "spec.servers[0].tls.privateKey",
    ),
    deny(
        "Gateway",
        https(mode="SIMPLE", tlsCertificates=[{"privateKey": "/k.pem"}]),
        "spec.servers[0].tls.tlsCertificates[0].serverCertificate",
    ),
    deny("Gateway", https(mode="MUTUAL", **CERT), "spec.servers[0].tls.caCertificates"),
    deny(
        "Gateway",
        https(mode="OPTIONAL_MUTUAL", tlsCertificates=[CERT]),
        "spec.servers[0].tls.caCertificates",
    ),
    allow("Gateway", https(mode="MUTUAL", caCertificates="/ca.pem", **CERT)),
    allow("Gateway", https(mode="MUTUAL", credentialName="c")),
    deny(
        "Gateway",
        https(mode="MUTUAL", credentialName="c", caCrl="/crl.pem"),
        "spec.servers[0].tls.caCrl",
    ),
    deny("Gateway", https(mode="SIMPLE", caCrl="/crl.pem", **CERT), "spec.servers[0].tls.caCrl"),
    allow("Gateway", https(mode="MUTUAL", caCertificates="/ca.pem", caCrl="/crl.pem", **CERT)),
    warn(
        "Gateway",
        https(mode="SIMPLE", credentialName="c", cipherSuites=["NOT-A-CIPHER"]),
        "spec.servers[0].tls.cipherSuites[0]",
    ),
    warn(
        "Gateway",
        https(mode="SIMPLE", credentialName="c", cipherSuites=["AES128-SHA", "AES128-SHA"]),
        "spec.servers[0].tls.cipherSuites[1]",
    ),
    warn(
        "Gateway",
        https(mode="SIMPLE", credentialName="c", minProtocolVersion="TLSV1_1"),
        "spec.servers[0].tls.minProtocolVersion",
    ),
    allow(
        "Gateway",
        https(
            mode="SIMPLE",
            credentialName="c",
            minProtocolVersion="TLSV1_0",
            cipherSuites=["AES128-SHA"],
        ),
    ),
]


@pytest.mark.parametrize("row", GATEWAY, ids=ids(GATEWAY))
def test_gateway(row: Row) -> None:
    assert_row(row)


def test_more_than_two_tls_certificates_only_warns() -> None:
    """Istio's webhook admits past 2 tlsCertificates with a warning (the CRD's maxItems is the
    API server's to enforce); the semantic verdict wins over the structural one."""
    row = warn("Gateway", https(mode="SIMPLE", tlsCertificates=[CERT, CERT, CERT]), "")
    path = "spec.servers[0].tls.tlsCertificates"
    found = {(f.path, f.is_error) for f in findings_of(row)}
    assert found == {(path, False)}


# ---- section 4.4: ServiceEntry -------------------------------------------------------------

HTTP_PORT = {"number": 80, "name": "http", "protocol": "HTTP"}
TCP_PORT = {"number": 5432, "name": "pg", "protocol": "TCP"}
SERVICE_ENTRY = [
    allow("ServiceEntry", se()),
    deny("ServiceEntry", se(hosts=[]), "spec.hosts"),
    deny("ServiceEntry", se(hosts=["*"]), "spec.hosts[0]"),
    deny("ServiceEntry", se(hosts=["bad_host.example.com"]), "spec.hosts[0]"),
    warn("ServiceEntry", se(hosts=["*-api.example.com"], resolution="NONE"), "spec.hosts[0]"),
    allow("ServiceEntry", se(hosts=["*-api.example.com"], resolution="DYNAMIC_DNS")),
    deny("ServiceEntry", se(addresses=["10.0.0.300"], resolution="NONE"), "spec.addresses[0]"),
    allow("ServiceEntry", se(addresses=["10.0.0.0/24"], resolution="NONE")),
    allow(
        "ServiceEntry",
        se(addresses=["10.0.0.0/24"], resolution="STATIC", endpoints=[{"address": "10.0.0.1"}]),
    ),
    deny("ServiceEntry", se(addresses=["10.0.0.0/24"]), "spec.addresses[0]"),
    deny(
        "ServiceEntry",
        se(
            resolution="STATIC",
            workloadSelector={"labels": {"app": "a"}},
            endpoints=[{"address": "10.0.0.1"}],
        ),
        "spec.workloadSelector",
    ),
    warn(
        "ServiceEntry",
        se(resolution="STATIC", workloadSelector={"labels": {}}),
        "spec.workloadSelector",
    ),
    deny(
        "ServiceEntry",
        se(resolution="STATIC", workloadSelector={"labels": {"app": "*"}}),
        "spec.workloadSelector.labels[app]",
    ),
    deny(
        "ServiceEntry", se(ports=[HTTP_PORT, {**HTTP_PORT, "number": 8080}]), "spec.ports[1].name"
    ),
    deny(
        "ServiceEntry",
        se(ports=[HTTP_PORT, {**HTTP_PORT, "name": "http2"}]),
        "spec.ports[1].number",
    ),
    deny(
        "ServiceEntry", se(ports=[{**HTTP_PORT, "targetPort": 70000}]), "spec.ports[0].targetPort"
    ),
    deny("ServiceEntry", se(ports=[{**HTTP_PORT, "protocol": "SMTP"}]), "spec.ports[0].protocol"),
    warn(
        "ServiceEntry",
        se(hosts=["db.example.com"], ports=[TCP_PORT], resolution="NONE"),
        "spec.ports[0]",
    ),
    warn(
        "ServiceEntry",
        se(hosts=["db.example.com"], ports=[{"number": 5432, "name": "pg"}], resolution="NONE"),
        "spec.ports[0]",
    ),
    allow("ServiceEntry", se(hosts=["db.example.com"], ports=[TCP_PORT])),
    warn(
        "ServiceEntry",
        se(hosts=["db.example.com"], ports=[TCP_PORT]),
        "spec.ports[0]",
        annotations={"networking.istio.io/enable-autoallocate-ip": "false"},
    ),
    allow(
        "ServiceEntry",
        se(hosts=["db.example.com"], ports=[TCP_PORT], resolution="NONE", addresses=["10.0.0.5"]),
    ),
    deny(
        "ServiceEntry", se(resolution="NONE", endpoints=[{"address": "10.0.0.1"}]), "spec.endpoints"
    ),
    warn(
        "ServiceEntry",
        se(resolution="NONE", workloadSelector={"labels": {"app": "a"}}),
        "spec.workloadSelector",
    ),
    deny(
        "ServiceEntry",
        se(resolution="STATIC", endpoints=[{"address": "db.example.com"}]),
        "spec.endpoints[0].address",
    ),
    deny(
        "ServiceEntry",
        se(resolution="STATIC", endpoints=[{"address": "10.0.0.1", "ports": {"other": 8443}}]),
        "spec.endpoints[0].ports[other]",
    ),
    allow(
        "ServiceEntry",
        se(resolution="STATIC", endpoints=[{"address": "10.0.0.1", "ports": {"https": 8443}}]),
    ),
    allow("ServiceEntry", se(resolution="STATIC", endpoints=[{"address": "unix:///var/a.sock"}])),
    deny(
        "ServiceEntry",
        se(
            resolution="STATIC",
            endpoints=[{"address": "unix:///var/a.sock", "ports": {"https": 8443}}],
        ),
        "spec.endpoints[0].ports",
    ),
    deny(
        "ServiceEntry",
        se(
            resolution="STATIC",
            ports=[HTTP_PORT, {**HTTP_PORT, "number": 81, "name": "http-alt"}],
            endpoints=[{"address": "unix:///var/a.sock"}],
        ),
        "spec.endpoints[0].address",
    ),
    deny("ServiceEntry", se(hosts=["*.example.com"]), "spec.hosts[0]"),
    allow("ServiceEntry", se(hosts=["*.example.com"], endpoints=[{"address": "gw.example.com"}])),
    deny(
        "ServiceEntry",
        se(
            resolution="DNS_ROUND_ROBIN",
            endpoints=[{"address": "a.example.com"}, {"address": "b.example.com"}],
        ),
        "spec.endpoints",
    ),
    deny("ServiceEntry", se(endpoints=[{"address": "bad_host!"}]), "spec.endpoints[0].address"),
    deny(
        "ServiceEntry",
        se(endpoints=[{"address": "a.example.com", "ports": {"nope": 1}}]),
        "spec.endpoints[0].ports[nope]",
    ),
    allow("ServiceEntry", se(hosts=["a.example.com"], addresses=["10.0.0.9"], ports=[TCP_PORT])),
    # With several hosts the "several hosts" error below fires too, and warnings go with errors.
    deny(
        "ServiceEntry",
        se(hosts=["a.example.com", "b.example.com"], addresses=["10.0.0.9"], ports=[TCP_PORT]),
        "spec.ports",
    ),
    deny("ServiceEntry", se(hosts=["a.example.com"], resolution="DYNAMIC_DNS"), "spec.hosts[0]"),
    deny(
        "ServiceEntry",
        se(hosts=["*.example.com"], resolution="DYNAMIC_DNS", addresses=["10.0.0.1"]),
        "spec.addresses",
    ),
    deny(
        "ServiceEntry",
        se(hosts=["*.example.com"], resolution="DYNAMIC_DNS", endpoints=[{"address": "10.0.0.1"}]),
        "spec.endpoints",
    ),
    deny(
        "ServiceEntry",
        se(hosts=["*.example.com"], resolution="DYNAMIC_DNS", ports=[TCP_PORT]),
        "spec.ports[0].protocol",
    ),
    deny(
        "ServiceEntry",
        se(hosts=["*.example.com"], resolution="DYNAMIC_DNS", location="MESH_INTERNAL"),
        "spec.location",
        labels={"istio.io/use-waypoint": "waypoint"},
    ),
    allow(
        "ServiceEntry",
        se(hosts=["*.example.com"], resolution="DYNAMIC_DNS", location="MESH_INTERNAL"),
    ),
    deny(
        "ServiceEntry", se(hosts=["a.example.com", "b.example.com"], ports=[TCP_PORT]), "spec.ports"
    ),
    allow("ServiceEntry", se(hosts=["a.example.com", "b.example.com"], ports=[HTTP_PORT])),
    allow(
        "ServiceEntry",
        se(
            hosts=["a.example.com", "b.example.com"],
            ports=[TCP_PORT],
            resolution="NONE",
            addresses=["10.0.0.9"],
        ),
    ),
]


@pytest.mark.parametrize("row", SERVICE_ENTRY, ids=ids(SERVICE_ENTRY))
def test_service_entry(row: Row) -> None:
    assert_row(row)


# ---- section 4.5: Sidecar ------------------------------------------------------------------

SIDECAR = [
    allow("Sidecar", sidecar()),
    deny("Sidecar", {}, "spec"),
    allow("Sidecar", {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}),
    allow("Sidecar", {"inboundConnectionPool": {"http": {"http1MaxPendingRequests": 10}}}),
    deny(
        "Sidecar",
        sidecar(workloadSelector={"labels": {"app": "*"}}),
        "spec.workloadSelector.labels[app]",
    ),
    warn("Sidecar", sidecar(workloadSelector={"labels": {}}), "spec.workloadSelector"),
    # ingress
    allow("Sidecar", ingress()),
    deny("Sidecar", {"ingress": [{"defaultEndpoint": "127.0.0.1:8080"}]}, "spec.ingress[0].port"),
    deny(
        "Sidecar",
        ingress(port={"number": 70000, "name": "http", "protocol": "HTTP"}),
        "spec.ingress[0].port.number",
    ),
    deny(
        "Sidecar",
        ingress(port={"number": 9080, "name": "Http_1", "protocol": "HTTP"}),
        "spec.ingress[0].port.name",
    ),
    deny(
        "Sidecar",
        ingress(port={"number": 9080, "name": "http", "protocol": "FTP"}),
        "spec.ingress[0].port.protocol",
    ),
    deny(
        "Sidecar",
        ingress(port={"number": 9080, "name": "http", "protocol": "HTTP", "targetPort": 8080}),
        "spec.ingress[0].port.targetPort",
    ),
    deny("Sidecar", ingress(bind="not-an-ip"), "spec.ingress[0].bind"),
    deny(
        "Sidecar",
        {"ingress": [ingress()["ingress"][0], ingress()["ingress"][0]]},
        "spec.ingress[1].port.number",
    ),
    *[
        allow("Sidecar", ingress(defaultEndpoint=endpoint))
        for endpoint in ("0.0.0.0:8080", "[::1]:8080", "[::]:8080", ":8080", "unix:///var/a.sock")
    ],
    deny("Sidecar", ingress(defaultEndpoint="10.0.0.1:8080"), "spec.ingress[0].defaultEndpoint"),
    deny("Sidecar", ingress(defaultEndpoint="127.0.0.1"), "spec.ingress[0].defaultEndpoint"),
    deny("Sidecar", ingress(defaultEndpoint="unix://a.sock"), "spec.ingress[0].defaultEndpoint"),
    deny("Sidecar", ingress(defaultEndpoint="127.0.0.1:0"), "spec.ingress[0].defaultEndpoint"),
    allow(
        "Sidecar",
        ingress(
            port={"number": 9443, "name": "https", "protocol": "HTTPS"},
            tls={"mode": "SIMPLE", **CERT},
        ),
    ),
    *[
        deny(
            "Sidecar",
            ingress(
                port={"number": 9443, "name": "https", "protocol": "HTTPS"},
                tls={"mode": "SIMPLE", **CERT, key: value},
            ),
            f"spec.ingress[0].tls.{key}",
        )
        for key, value in (
            ("subjectAltNames", ["a"]),
            ("httpsRedirect", True),
            ("credentialName", "c"),
            ("credentialNames", ["c"]),
            ("tlsCertificates", [CERT]),
        )
    ],
    deny(
        "Sidecar",
        ingress(
            port={"number": 9443, "name": "https", "protocol": "HTTPS"},
            tls={"mode": "ISTIO_MUTUAL"},
        ),
        "spec.ingress[0].tls.mode",
    ),
    deny(
        "Sidecar",
        ingress(
            port={"number": 9443, "name": "https", "protocol": "HTTPS"},
            tls={"mode": "AUTO_PASSTHROUGH"},
        ),
        "spec.ingress[0].tls.mode",
    ),
    deny("Sidecar", ingress(tls={"mode": "SIMPLE", **CERT}), "spec.ingress[0].tls"),
    deny(
        "Sidecar",
        ingress(
            port={"number": 9443, "name": "tls", "protocol": "TLS"}, tls={"mode": "MUTUAL", **CERT}
        ),
        "spec.ingress[0].tls.caCertificates",
    ),
    deny(
        "Sidecar",
        ingress(connectionPool={"tcp": {"connectTimeout": "0s"}}),
        "spec.ingress[0].connectionPool.tcp.connectTimeout",
    ),
    warn(
        "Sidecar",
        ingress(
            port={"number": 5432, "name": "pg", "protocol": "TCP"},
            connectionPool={"http": {"maxRetries": 3}},
        ),
        "spec.ingress[0].connectionPool.http",
    ),
    # egress listeners
    deny(
        "Sidecar",
        {"egress": [{"hosts": ["./*"]}, {"port": HTTP_PORT, "hosts": ["./*"]}]},
        "spec.egress[0].port",
    ),
    allow("Sidecar", {"egress": [{"port": HTTP_PORT, "hosts": ["./*"]}, {"hosts": ["./*"]}]}),
    deny(
        "Sidecar",
        {
            "egress": [
                {
                    "port": {"number": 0, "name": "u", "protocol": "HTTP"},
                    "bind": "unix:///var/a.sock",
                    "captureMode": "IPTABLES",
                    "hosts": ["./*"],
                }
            ]
        },
        "spec.egress[0].captureMode",
    ),
    deny(
        "Sidecar",
        {"egress": [{"port": HTTP_PORT, "hosts": ["./*"]}, {"port": HTTP_PORT, "hosts": ["./*"]}]},
        "spec.egress[1].port.number",
    ),
    allow(
        "Sidecar",
        {
            "egress": [
                {"port": HTTP_PORT, "bind": "10.0.0.1", "hosts": ["./*"]},
                {"port": HTTP_PORT, "bind": "10.0.0.2", "hosts": ["./*"]},
            ]
        },
    ),
    deny(
        "Sidecar",
        {
            "egress": [
                {
                    "port": {"number": 0, "name": "u", "protocol": "HTTP"},
                    "bind": "unix:///a.sock",
                    "hosts": ["./*"],
                },
                {
                    "port": {"number": 0, "name": "v", "protocol": "HTTP"},
                    "bind": "unix:///a.sock",
                    "hosts": ["./*"],
                },
            ]
        },
        "spec.egress[1].bind",
    ),
    deny(
        "Sidecar",
        {"egress": [{"port": {**HTTP_PORT, "targetPort": 8080}, "hosts": ["./*"]}]},
        "spec.egress[0].port.targetPort",
    ),
    deny("Sidecar", {"egress": [{"hosts": []}]}, "spec.egress[0].hosts"),
    allow("Sidecar", egress_hosts("istio-system/*", "./*.example.com", "*/a.example.com")),
    deny("Sidecar", egress_hosts("Bad_NS/a.example.com"), "spec.egress[0].hosts[0]"),
    warn("Sidecar", egress_hosts("./a.example.com", "./a.example.com"), "spec.egress[0].hosts[1]"),
    warn("Sidecar", egress_hosts("prod/*", "prod/a.example.com"), "spec.egress[0].hosts[1]"),
    warn("Sidecar", egress_hosts("prod/a.example.com", "prod/*"), "spec.egress[0].hosts[0]"),
    warn("Sidecar", egress_hosts("*/*", "prod/a.example.com"), "spec.egress[0].hosts"),
    # outboundTrafficPolicy
    deny(
        "Sidecar",
        {"outboundTrafficPolicy": {"mode": "ALLOW_ANY_DYNAMIC_DNS"}},
        "spec.outboundTrafficPolicy.mode",
    ),
    allow(
        "Sidecar",
        {
            "outboundTrafficPolicy": {
                "mode": "ALLOW_ANY",
                "egressProxy": {"host": "proxy.example.com", "port": {"number": 3128}},
            }
        },
    ),
    deny(
        "Sidecar",
        {
            "outboundTrafficPolicy": {
                "mode": "REGISTRY_ONLY",
                "egressProxy": {"host": "proxy.example.com", "port": {"number": 3128}},
            }
        },
        "spec.outboundTrafficPolicy.egressProxy",
    ),
    deny(
        "Sidecar",
        {
            "outboundTrafficPolicy": {
                "mode": "ALLOW_ANY",
                "egressProxy": {"host": "*.example.com", "port": {"number": 3128}},
            }
        },
        "spec.outboundTrafficPolicy.egressProxy.host",
    ),
    deny(
        "Sidecar",
        {
            "outboundTrafficPolicy": {
                "mode": "ALLOW_ANY",
                "egressProxy": {"host": "proxy.example.com"},
            }
        },
        "spec.outboundTrafficPolicy.egressProxy.port",
    ),
    # inboundConnectionPool
    deny("Sidecar", {"inboundConnectionPool": {}}, "spec.inboundConnectionPool"),
    deny(
        "Sidecar",
        {"inboundConnectionPool": {"http": {"maxRetries": -1}}},
        "spec.inboundConnectionPool.http.maxRetries",
    ),
]


@pytest.mark.parametrize("row", SIDECAR, ids=ids(SIDECAR))
def test_sidecar(row: Row) -> None:
    assert_row(row)


# ---- section 4.7: PeerAuthentication -------------------------------------------------------

SELECTED = {"selector": {"matchLabels": {"app": "web"}}}
PEER_AUTHENTICATION = [
    allow(
        "PeerAuthentication",
        {**SELECTED, "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}},
    ),
    deny(
        "PeerAuthentication", {"portLevelMtls": {"8080": {"mode": "DISABLE"}}}, "spec.portLevelMtls"
    ),
    deny(
        "PeerAuthentication",
        {"selector": {"matchLabels": {}}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}},
        "spec.portLevelMtls",
    ),
    deny("PeerAuthentication", {**SELECTED, "portLevelMtls": {}}, "spec.portLevelMtls"),
    deny(
        "PeerAuthentication",
        {**SELECTED, "portLevelMtls": {"0": {"mode": "DISABLE"}}},
        "spec.portLevelMtls[0]",
    ),
    deny(
        "PeerAuthentication",
        {**SELECTED, "portLevelMtls": {"70000": {"mode": "DISABLE"}}},
        "spec.portLevelMtls[70000]",
    ),
    *[
        allow("PeerAuthentication", {"mtls": {"mode": m}})
        for m in ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
    ],
    deny("PeerAuthentication", {"mtls": {"mode": "OPTIONAL"}}, "spec.mtls.mode"),
    deny(
        "PeerAuthentication",
        {**SELECTED, "portLevelMtls": {"80": {"mode": "strict"}}},
        "spec.portLevelMtls[80].mode",
    ),
    warn("PeerAuthentication", {"selector": {}}, "spec.selector"),
    deny(
        "PeerAuthentication",
        {"selector": {"matchLabels": {"": "x"}}},
        "spec.selector.matchLabels[]",
    ),
]


@pytest.mark.parametrize("row", PEER_AUTHENTICATION, ids=ids(PEER_AUTHENTICATION))
def test_peer_authentication(row: Row) -> None:
    assert_row(row)


# ---- sections 4.6 and 4.8: AuthorizationPolicy, RequestAuthentication ----------------------

CUSTOM = {"action": "CUSTOM", "provider": {"name": "ext"}}
AUTHORIZATION_POLICY = [
    allow("AuthorizationPolicy", {}),
    deny(
        "AuthorizationPolicy",
        {**SELECTED, "targetRef": {"kind": "Service", "group": "", "name": "w"}},
        "spec",
    ),
    deny("AuthorizationPolicy", {"action": "CUSTOM", "provider": {"name": "ext"}}, "spec.rules"),
    allow("AuthorizationPolicy", {**CUSTOM, "rules": [{}]}),
    deny("AuthorizationPolicy", {"action": "CUSTOM", "rules": [{}]}, "spec.provider.name"),
    *[
        deny(
            "AuthorizationPolicy",
            {**CUSTOM, **source(**{key: ["x"]})},
            f"spec.rules[0].from[0].source.{key}",
        )
        for key in (
            "namespaces",
            "serviceAccounts",
            "principals",
            "requestPrincipals",
            "notNamespaces",
            "notPrincipals",
            "notRequestPrincipals",
        )
    ],
    *[
        deny("AuthorizationPolicy", {**CUSTOM, **when(key, "x")}, "spec.rules[0].when[0].key")
        for key in (
            "source.namespace",
            "source.principal",
            "request.auth.claims[iss]",
            "source.serviceAccount",
            "source.trustDomain",
        )
    ],
    deny("AuthorizationPolicy", {"provider": {"name": "ext"}, "rules": [{}]}, "spec.provider"),
    deny("AuthorizationPolicy", {"action": "DENY"}, "spec.rules"),
    allow("AuthorizationPolicy", {"action": "AUDIT"}),
    warn("AuthorizationPolicy", {"action": "DENY", **operation(paths=["/admin"])}, "spec.rules[0]"),
    allow("AuthorizationPolicy", {"action": "DENY", **operation(paths=["/admin"], ports=["80"])}),
    deny("AuthorizationPolicy", {"rules": [None]}, "spec.rules[0]"),
    deny("AuthorizationPolicy", ap_rule(**{"from": []}), "spec.rules[0].from"),
    deny("AuthorizationPolicy", ap_rule(to=[]), "spec.rules[0].to"),
    deny(
        "AuthorizationPolicy", ap_rule(**{"from": [{"source": {}}]}), "spec.rules[0].from[0].source"
    ),
    deny("AuthorizationPolicy", ap_rule(**{"from": [{}]}), "spec.rules[0].from[0].source"),
    deny(
        "AuthorizationPolicy",
        source(serviceAccounts=["a"], principals=["p"]),
        "spec.rules[0].from[0].source",
    ),
    deny(
        "AuthorizationPolicy", source(principals=[""]), "spec.rules[0].from[0].source.principals[0]"
    ),
    deny(
        "AuthorizationPolicy",
        source(ipBlocks=["10.0.0.0/33"]),
        "spec.rules[0].from[0].source.ipBlocks[0]",
    ),
    deny(
        "AuthorizationPolicy",
        source(notRemoteIpBlocks=["nope"]),
        "spec.rules[0].from[0].source.notRemoteIpBlocks[0]",
    ),
    allow("AuthorizationPolicy", source(serviceAccounts=["web", "shop/web"])),
    deny(
        "AuthorizationPolicy",
        source(serviceAccounts=[f"sa{i}" for i in range(17)]),
        "spec.rules[0].from[0].source.serviceAccounts",
    ),
    deny(
        "AuthorizationPolicy",
        source(serviceAccounts=["*"]),
        "spec.rules[0].from[0].source.serviceAccounts[0]",
    ),
    deny(
        "AuthorizationPolicy",
        source(serviceAccounts=["a/b/c"]),
        "spec.rules[0].from[0].source.serviceAccounts[0]",
    ),
    allow("AuthorizationPolicy", source(trustDomains=["*.example.com", "corp*"])),
    deny(
        "AuthorizationPolicy",
        source(trustDomains=["a*b"]),
        "spec.rules[0].from[0].source.trustDomains[0]",
    ),
    deny(
        "AuthorizationPolicy",
        source(trustDomains=["*a*"]),
        "spec.rules[0].from[0].source.trustDomains[0]",
    ),
    deny(
        "AuthorizationPolicy",
        source(trustDomains=["a/b"]),
        "spec.rules[0].from[0].source.trustDomains[0]",
    ),
    deny("AuthorizationPolicy", ap_rule(to=[{"operation": {}}]), "spec.rules[0].to[0].operation"),
    deny(
        "AuthorizationPolicy", operation(methods=[""]), "spec.rules[0].to[0].operation.methods[0]"
    ),
    deny(
        "AuthorizationPolicy", operation(ports=["70000"]), "spec.rules[0].to[0].operation.ports[0]"
    ),
    deny(
        "AuthorizationPolicy",
        operation(notPorts=["http"]),
        "spec.rules[0].to[0].operation.notPorts[0]",
    ),
    allow("AuthorizationPolicy", operation(paths=["/api/{*}/items/{**}"])),
    deny(
        "AuthorizationPolicy",
        operation(paths=["/api/{**}/items/{*}"]),
        "spec.rules[0].to[0].operation.paths[0]",
    ),
    deny(
        "AuthorizationPolicy",
        operation(paths=["/api/{id}"]),
        "spec.rules[0].to[0].operation.paths[0]",
    ),
    deny(
        "AuthorizationPolicy",
        operation(notPaths=["/a b/{*}"]),
        "spec.rules[0].to[0].operation.notPaths[0]",
    ),
    allow("AuthorizationPolicy", operation(paths=["/a b", "*"])),
    deny("AuthorizationPolicy", ap_rule(when=[{"values": ["x"]}]), "spec.rules[0].when[0].key"),
    deny("AuthorizationPolicy", ap_rule(when=[{"key": "source.ip"}]), "spec.rules[0].when[0]"),
    *[
        allow("AuthorizationPolicy", when(key, value))
        for key, value in (
            ("request.headers[x-user]", "a"),
            ("source.ip", "10.0.0.1"),
            ("remote.ip", "10.0.0.0/8"),
            ("source.namespace", "shop"),
            ("source.serviceAccount", "shop/web"),
            ("source.principal", "td/ns/a/sa/b"),
            ("source.trustDomain", "*.example.com"),
            ("request.auth.principal", "iss/sub"),
            ("request.auth.audiences", "a"),
            ("request.auth.presenter", "p"),
            ("request.auth.claims[groups]", "g"),
            ("destination.ip", "10.0.0.1"),
            ("destination.port", "8080"),
            ("connection.sni", "a.example.com"),
            ("experimental.envoy.filters.http.foo[bar]", "x"),
        )
    ],
    *[
        deny("AuthorizationPolicy", when(key, "x"), "spec.rules[0].when[0].key")
        for key in (
            "destination.labels[app]",
            "destination.namespace",
            "destination.name",
            "destination.user",
            "request.unknown",
        )
    ],
    deny("AuthorizationPolicy", when("source.ip", "not-an-ip"), "spec.rules[0].when[0].values[0]"),
    deny(
        "AuthorizationPolicy", when("destination.port", "http"), "spec.rules[0].when[0].values[0]"
    ),
    deny(
        "AuthorizationPolicy",
        when("source.serviceAccount", "a/b/c"),
        "spec.rules[0].when[0].values[0]",
    ),
    deny(
        "AuthorizationPolicy", when("source.trustDomain", "a*b"), "spec.rules[0].when[0].values[0]"
    ),
    allow(
        "AuthorizationPolicy",
        {"action": "DENY", "rules": [{}]},
        annotations={"istio.io/dry-run": "true"},
    ),
    deny(
        "AuthorizationPolicy",
        {"action": "AUDIT"},
        "metadata.annotations[istio.io/dry-run]",
        annotations={"istio.io/dry-run": "true"},
    ),
    deny(
        "AuthorizationPolicy",
        {},
        "metadata.annotations[istio.io/dry-run]",
        annotations={"istio.io/dry-run": "maybe"},
    ),
    # Principals and paths are otherwise free-form; '*' is fine in principals.
    allow("AuthorizationPolicy", source(principals=["*", "not-a-spiffe-id", "*/sa/web"])),
]

REQUEST_AUTHENTICATION = [
    allow("RequestAuthentication", jwt()),
    deny(
        "RequestAuthentication",
        {**SELECTED, "targetRefs": [{"kind": "Service", "group": "", "name": "w"}], **jwt()},
        "spec",
    ),
    deny("RequestAuthentication", {"jwtRules": [{"audiences": ["a"]}]}, "spec.jwtRules[0].issuer"),
    allow("RequestAuthentication", {"jwtRules": [{"jwksUri": "https://a.example.com/jwks"}]}),
    deny(
        "RequestAuthentication", jwt(jwksUri="ftp://a.example.com/jwks"), "spec.jwtRules[0].jwksUri"
    ),
    allow("RequestAuthentication", jwt(jwksUri="http://a.example.com:8080/jwks")),
    deny("RequestAuthentication", jwt(jwksUri="https://" + "a" * 2048), "spec.jwtRules[0].jwksUri"),
    deny("RequestAuthentication", jwt(jwks="{not json"), "spec.jwtRules[0].jwks"),
    allow(
        "RequestAuthentication",
        jwt(
            jwks=json.dumps(
                {
                    "keys": [
                        {
                            "kty": "EC",
                            "crv": "P-256",
                            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                        }
                    ]
                }
            )
        ),
    ),
    warn(
        "RequestAuthentication",
        jwt(jwks=json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})),
        "spec.jwtRules[0].jwks[0]",
    ),
    deny("RequestAuthentication", jwt(audiences=[""]), "spec.jwtRules[0].audiences[0]"),
    deny("RequestAuthentication", jwt(fromParams=[""]), "spec.jwtRules[0].fromParams[0]"),
    deny("RequestAuthentication", jwt(fromCookies=[""]), "spec.jwtRules[0].fromCookies[0]"),
    deny(
        "RequestAuthentication",
        jwt(fromHeaders=[{"name": ""}]),
        "spec.jwtRules[0].fromHeaders[0].name",
    ),
    allow("RequestAuthentication", jwt(outputClaimToHeaders=[{"header": "x-sub", "claim": "sub"}])),
    deny(
        "RequestAuthentication",
        jwt(outputClaimToHeaders=[{"header": "x-sub"}]),
        "spec.jwtRules[0].outputClaimToHeaders[0].claim",
    ),
    deny(
        "RequestAuthentication",
        jwt(outputClaimToHeaders=[{"claim": "sub"}]),
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
    ),
    deny(
        "RequestAuthentication",
        jwt(outputClaimToHeaders=[{"header": "x sub", "claim": "sub"}]),
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
    ),
    allow("RequestAuthentication", jwt(timeout="5s")),
    deny("RequestAuthentication", jwt(timeout="soon"), "spec.jwtRules[0].timeout"),
]


@pytest.mark.parametrize("row", AUTHORIZATION_POLICY, ids=ids(AUTHORIZATION_POLICY))
def test_authorization_policy(row: Row) -> None:
    assert_row(row)


@pytest.mark.parametrize("row", REQUEST_AUTHENTICATION, ids=ids(REQUEST_AUTHENTICATION))
def test_request_authentication(row: Row) -> None:
    assert_row(row)


def test_jwks_and_jwks_uri_together_is_a_crd_rule() -> None:
    """The Go validator accepts both; the CRD refuses them, and the webhook runs CRD rules."""
    row = deny("RequestAuthentication", jwt(jwks='{"keys": []}', jwksUri="https://a/jwks"), "")
    assert any(f.is_error for f in findings_of(row))


# ---- section 4.9: what Istio does not check at admission -----------------------------------

NOT_CHECKED = [
    allow(
        "VirtualService",
        vs(
            http=[
                {
                    "route": [
                        {
                            "destination": {"host": "reviews", "subset": "no-such-subset"},
                            "weight": 30,
                        },
                        {
                            "destination": {"host": "ratings", "port": {"number": 9080}},
                            "weight": 30,
                        },
                    ]
                }
            ]
        ),
    ),
    allow("VirtualService", vs(gateways=["no-such-gateway"], hosts=["a.example.com"])),
    allow("Gateway", https(mode="SIMPLE", credentialName="no-such-secret")),
    allow("Sidecar", sidecar()),
    allow(
        "AuthorizationPolicy", {**CUSTOM, "provider": {"name": "not-in-mesh-config"}, "rules": [{}]}
    ),
    allow("AuthorizationPolicy", source(principals=["anything/at/all"])),
]


@pytest.mark.parametrize("row", NOT_CHECKED, ids=ids(NOT_CHECKED))
def test_not_checked_at_admission(row: Row) -> None:
    assert_row(row)


def test_unknown_spec_fields_are_admitted() -> None:
    """Istio decodes leniently; the CRD catches typos. We admit with a warning naming it."""
    found = findings_of(Row("DestinationRule", dr(hostt="x"), "warn"))
    assert not any(f.is_error for f in found)
    assert any("hostt" in f.path or "hostt" in f.message for f in found)


# ---- section 4.10: the team's rate-limit config --------------------------------------------


def ratelimit(spec: dict[str, Any]) -> list[Finding]:
    resource = make("Gateway", {})
    resource = dataclasses.replace(
        resource, api_version="meshguard.io/v1alpha1", kind="RateLimitConfig", spec=spec
    )
    return default_registry().validate(resource)


LIMIT = {"unit": "second", "requests_per_unit": 10}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"domain": "d", "descriptors": [{"key": "k", "rate_limit": LIMIT, "bogus": 1}]},
            "unknown key 'bogus'",
        ),
        (
            {"domain": "d", "descriptors": [{"key": "k", "rate_limit": {"requests_per_unit": 1}}]},
            "invalid rate limit unit",
        ),
        (
            {
                "domain": "d",
                "descriptors": [
                    {"key": "k", "rate_limit": {"unit": "fortnight", "requests_per_unit": 1}}
                ],
            },
            "invalid rate limit unit 'fortnight'",
        ),
        (
            {
                "domain": "d",
                "descriptors": [{"key": "k", "rate_limit": {"unit": "second", "unlimited": True}}],
            },
            "should not specify rate limit unit when unlimited",
        ),
        (
            {
                "domain": "d",
                "descriptors": [
                    {"key": "k", "value": "v", "rate_limit": LIMIT},
                    {"key": "k", "value": "v", "rate_limit": LIMIT},
                ],
            },
            "duplicate descriptor composite key",
        ),
        ({"domain": "", "descriptors": []}, "empty domain"),
        ({"domain": "d", "descriptors": [{"rate_limit": LIMIT}]}, "descriptor has empty key"),
    ],
)
def test_rate_limit_config_rejections(spec: dict[str, Any], fragment: str) -> None:
    errs = [f for f in ratelimit(spec) if f.is_error]
    assert any(fragment in f.message for f in errs), errs
    assert all(f.path.startswith("spec") for f in errs), "prefixed with the field path"


def test_rate_limit_config_valid() -> None:
    assert ratelimit({"domain": "d", "descriptors": [{"key": "k", "rate_limit": LIMIT}]}) == []


def test_rate_limit_config_shadow_mode_warns() -> None:
    found = ratelimit(
        {"domain": "d", "descriptors": [{"key": "k", "rate_limit": LIMIT, "shadow_mode": True}]}
    )
    assert [(f.path, f.is_error) for f in found] == [("spec.descriptors[0].shadow_mode", False)]


def test_rate_limit_config_allow_list_entry_is_no_mistake() -> None:
    """A value without a limit exempts itself from a key-only default: no warning."""
    found = ratelimit(
        {
            "domain": "d",
            "descriptors": [{"key": "user", "rate_limit": LIMIT}, {"key": "user", "value": "ops"}],
        }
    )
    assert found == []


# ---- section 2: the AdmissionReview contract -----------------------------------------------

GOOD_DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "r", "namespace": NS},
    "spec": dr(),
}


def review_of(obj: Any, *, version: str = "admission.k8s.io/v1", **request: Any) -> bytes:
    body = {
        "uid": "uid-7",
        "kind": {"group": "networking.istio.io", "version": "v1", "kind": "DestinationRule"},
        "resource": {
            "group": "networking.istio.io",
            "version": "v1",
            "resource": "destinationrules",
        },
        "operation": "CREATE",
        "namespace": NS,
        "userInfo": {"username": "alice"},
        "object": obj,
        **request,
    }
    return json.dumps({"apiVersion": version, "kind": "AdmissionReview", "request": body}).encode()


def answer(body: bytes) -> dict[str, Any]:
    request = admission.parse_review(body)
    return admission.response(request, admission.decide(request, default_registry()))


def with_spec(**spec: Any) -> dict[str, Any]:
    return {**GOOD_DR, "spec": {**GOOD_DR["spec"], **spec}}


def test_allow_echoes_api_version_kind_and_uid() -> None:
    assert answer(review_of(GOOD_DR)) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "uid-7", "allowed": True},
    }


def test_v1beta1_review_is_answered_in_v1beta1() -> None:
    out = answer(review_of(GOOD_DR, version="admission.k8s.io/v1beta1"))
    assert out["apiVersion"] == "admission.k8s.io/v1beta1" and out["response"]["uid"] == "uid-7"


def test_empty_body_is_an_http_400_not_an_answer() -> None:
    with pytest.raises(admission.ReviewError) as caught:
        admission.parse_review(b"")
    assert caught.value.status == 400


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_operations_other_than_create_and_update_are_allowed(operation: str) -> None:
    out = answer(review_of(None, operation=operation, oldObject=with_spec(host="bad host")))
    assert out["response"] == {"uid": "uid-7", "allowed": True}


def test_update_is_validated() -> None:
    out = answer(review_of(with_spec(host="bad host"), operation="UPDATE", oldObject=GOOD_DR))
    assert out["response"]["allowed"] is False


def test_undecodable_object_is_denied() -> None:
    out = answer(review_of("not an object"))["response"]
    assert out["allowed"] is False and "cannot decode configuration" in out["status"]["message"]


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1", "v2"])
def test_schema_is_found_by_group_and_kind_ignoring_version(version: str) -> None:
    bad = {**with_spec(host="bad host"), "apiVersion": f"networking.istio.io/{version}"}
    out = answer(review_of(bad))["response"]
    assert out["allowed"] is False and "spec.host" in out["status"]["message"]


def test_wrong_types_are_denied() -> None:
    out = answer(review_of(with_spec(host=5)))["response"]
    assert out["allowed"] is False and "spec.host" in out["status"]["message"]


def test_unknown_enum_strings_are_denied() -> None:
    bad = with_spec(trafficPolicy={"loadBalancer": {"simple": "FASTEST"}})
    out = answer(review_of(bad))["response"]
    assert out["allowed"] is False
    assert "spec.trafficPolicy.loadBalancer.simple" in out["status"]["message"]


def test_unknown_spec_fields_are_denied_by_default_and_named() -> None:
    response = answer(review_of(with_spec(hostt="typo")))["response"]
    assert response["allowed"] is False
    assert "spec.hostt: unknown field 'hostt'" in response["status"]["message"]


def test_unknown_spec_fields_only_warn_with_istios_lenient_decoding() -> None:
    request = admission.parse_review(review_of(with_spec(hostt="typo")))
    verdict = admission.decide(request, default_registry(), reject_unknown_fields=False)
    response = admission.response(request, verdict)["response"]
    assert response["allowed"] is True
    assert any("unknown field 'hostt'" in w for w in response["warnings"])


def test_dry_run_annotation_outside_authorization_policy_is_denied() -> None:
    obj = {
        **GOOD_DR,
        "metadata": {**GOOD_DR["metadata"], "annotations": {"istio.io/dry-run": "true"}},
    }
    message = answer(review_of(obj))["response"]["status"]["message"]
    assert "metadata.annotations[istio.io/dry-run]" in message


def test_always_reject_annotation_is_denied_also_on_dry_run() -> None:
    obj = {
        **GOOD_DR,
        "metadata": {
            **GOOD_DR["metadata"],
            "annotations": {"internal.istio.io/webhook-always-reject": "true"},
        },
    }
    for dry_run in (False, True):
        out = answer(review_of(obj, dryRun=dry_run))["response"]
        assert out["allowed"] is False and out["status"]["code"] >= 400


def test_one_error_message_format() -> None:
    message = answer(review_of(with_spec(host="bad host")))["response"]["status"]["message"]
    assert message.startswith("configuration is invalid: spec.host: ")


def test_several_errors_and_dropped_warnings() -> None:
    bad = with_spec(
        host="bad host",
        exportTo=["*", "."],
        trafficPolicy={"outlierDetection": {"consecutiveErrors": 5}},
    )
    out = answer(review_of(bad))["response"]
    assert out["allowed"] is False and "warnings" not in out
    message = out["status"]["message"]
    assert message.startswith("configuration is invalid: 2 errors occurred:")
    assert "\n\t* spec.host: " in message and "\n\t* spec.exportTo: " in message


def test_unexpected_top_level_keys_are_denied() -> None:
    out = answer(review_of({**GOOD_DR, "extra": {}}))["response"]
    assert out["allowed"] is False and "extra" in out["status"]["message"]


def test_status_is_admitted() -> None:
    assert answer(review_of({**GOOD_DR, "status": {}}))["response"]["allowed"] is True


def test_warnings_one_string_each_on_allow() -> None:
    warned = with_spec(
        trafficPolicy={
            "outlierDetection": {"consecutiveErrors": 5},
            "loadBalancer": {"consistentHash": {"useSourceIp": True, "minimumRingSize": 8}},
        }
    )
    out = answer(review_of(warned))["response"]
    assert out["allowed"] is True
    assert len(out["warnings"]) == 2
    assert out["warnings"][0].startswith("spec.trafficPolicy.")


def test_dry_run_gets_the_same_verdict() -> None:
    for obj in (GOOD_DR, with_spec(host="bad host")):
        assert answer(review_of(obj, dryRun=True)) == answer(review_of(obj))


def test_denial_code_is_at_least_400() -> None:
    status = answer(review_of(with_spec(host="bad host")))["response"]["status"]
    assert status["code"] >= 400


# ---- section 4.1: VirtualService -----------------------------------------------------------

ROUTE = [{"destination": {"host": "reviews"}}]
VIRTUAL_SERVICE = [
    deny("VirtualService", {"hosts": ["reviews"]}, "spec"),
    deny("VirtualService", vs(hosts=["bad_host"]), "spec.hosts[0]"),
    deny("VirtualService", vs(hosts=["*"]), "spec.hosts[0]"),
    deny("VirtualService", vs(hosts=["*"], gateways=["edge", "mesh"]), "spec.hosts[0]"),
    allow("VirtualService", vs(hosts=["*"], gateways=["edge"])),
    deny("VirtualService", vs(hosts=["*.a.com", "b.a.com"]), "spec.hosts[1]"),
    deny("VirtualService", vs(hosts=["a.com", "a.com"]), "spec.hosts[1]"),
    deny("VirtualService", {"gateways": ["edge"], "http": [{"route": ROUTE}]}, "spec.gateways"),
    allow("VirtualService", vs(gateways=["prod/edge", "mesh"])),
    warn("VirtualService", vs(gateways=["edge.prod"]), "spec.gateways[0]"),
    deny("VirtualService", vs(gateways=["Prod_1/edge"]), "spec.gateways[0]"),
    deny("VirtualService", vs(http=[{}]), "spec.http[0]"),
    deny("VirtualService", vs_http(redirect={"uri": "/x"}), "spec.http[0].redirect"),
    deny(
        "VirtualService",
        vs(
            http=[
                {
                    "redirect": {"uri": "/x"},
                    "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 10}}},
                }
            ]
        ),
        "spec.http[0].redirect",
    ),
    deny(
        "VirtualService",
        vs(http=[{"directResponse": {"status": 200}, "route": ROUTE}]),
        "spec.http[0].route",
    ),
    deny(
        "VirtualService",
        vs(http=[{"delegate": {"name": "d"}, "route": ROUTE}]),
        "spec.http[0].route",
    ),
    deny(
        "VirtualService",
        vs_http(mirror={"host": "m"}, mirrors=[{"destination": {"host": "m"}}]),
        "spec.http[0].mirrors",
    ),
    deny(
        "VirtualService",
        vs_http(mirrorPercentage={"value": 101}),
        "spec.http[0].mirrorPercentage.value",
    ),
    deny("VirtualService", vs_http(match=[{"port": 70000}]), "spec.http[0].match[0].port"),
    deny(
        "VirtualService",
        vs_http(match=[{"sourceNamespace": "Bad_NS"}]),
        "spec.http[0].match[0].sourceNamespace",
    ),
    deny(
        "VirtualService",
        vs(http=[{"route": [{"destination": {}}]}]),
        "spec.http[0].route[0].destination.host",
    ),
    deny(
        "VirtualService",
        vs(http=[{"route": [{"destination": {"host": "*"}}]}]),
        "spec.http[0].route[0].destination.host",
    ),
    deny(
        "VirtualService",
        vs(http=[{"route": [{"destination": {"host": "ns/reviews"}}]}]),
        "spec.http[0].route[0].destination.host",
    ),
    deny(
        "VirtualService",
        vs(http=[{"route": [{"destination": {"host": "r", "subset": "V_1"}}]}]),
        "spec.http[0].route[0].destination.subset",
    ),
    deny(
        "VirtualService",
        vs(http=[{"route": [{"destination": {"host": "r", "port": {"number": 0}}}]}]),
        "spec.http[0].route[0].destination.port.number",
    ),
    deny(
        "VirtualService",
        vs(
            http=[
                {
                    "route": [
                        {"destination": {"host": "a"}, "weight": -1},
                        {"destination": {"host": "b"}, "weight": 1},
                    ]
                }
            ]
        ),
        "spec.http[0].route[0].weight",
    ),
    deny(
        "VirtualService",
        vs(
            http=[
                {
                    "route": [
                        {"destination": {"host": "a"}, "weight": 0},
                        {"destination": {"host": "b"}, "weight": 0},
                    ]
                }
            ]
        ),
        "spec.http[0].route",
    ),
    deny("VirtualService", vs_http(retries={"attempts": -1}), "spec.http[0].retries.attempts"),
    deny(
        "VirtualService",
        vs_http(retries={"attempts": 0, "perTryTimeout": "1s"}),
        "spec.http[0].retries.perTryTimeout",
    ),
    deny(
        "VirtualService",
        vs_http(retries={"attempts": 3, "retryOn": "5xx,sometimes"}),
        "spec.http[0].retries.retryOn",
    ),
    allow(
        "VirtualService",
        vs_http(
            retries={"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset,503,unavailable"}
        ),
    ),
    deny(
        "VirtualService",
        vs(http=[{"redirect": {"uri": "/a", "redirectCode": 200}}]),
        "spec.http[0].redirect.redirectCode",
    ),
    deny(
        "VirtualService", vs(http=[{"redirect": {"scheme": "ftp"}}]), "spec.http[0].redirect.scheme"
    ),
    deny("VirtualService", vs(http=[{"redirect": {}}]), "spec.http[0].redirect"),
    deny(
        "VirtualService",
        vs(http=[{"match": [{"uri": {"exact": "/a"}}], "redirect": {"prefixRewrite": "/b"}}]),
        "spec.http[0].redirect.prefixRewrite",
    ),
    deny("VirtualService", vs_http(rewrite={}), "spec.http[0].rewrite"),
    deny(
        "VirtualService",
        vs_http(rewrite={"authority": "a"}, headers={"request": {"set": {"host": "b"}}}),
        "spec.http[0].headers",
    ),
    deny(
        "VirtualService",
        vs(http=[{"directResponse": {"status": 700}}]),
        "spec.http[0].directResponse.status",
    ),
    warn(
        "VirtualService",
        vs(http=[{"directResponse": {"status": 200, "body": {"string": "x" * 200_000}}}]),
        "spec.http[0].directResponse.body",
    ),
    deny(
        "VirtualService",
        vs(http=[{"directResponse": {"status": 200, "body": {"string": "x" * 1_100_000}}}]),
        "spec.http[0].directResponse.body",
    ),
    deny("VirtualService", vs_http(fault={}), "spec.http[0].fault"),
    deny(
        "VirtualService",
        vs_http(fault={"abort": {"httpStatus": 100}}),
        "spec.http[0].fault.abort.httpStatus",
    ),
    deny(
        "VirtualService",
        vs_http(fault={"abort": {"grpcStatus": "NOPE"}}),
        "spec.http[0].fault.abort.grpcStatus",
    ),
    allow("VirtualService", vs_http(fault={"abort": {"grpcStatus": "UNAVAILABLE"}})),
    deny(
        "VirtualService",
        vs_http(corsPolicy={"allowMethods": ["FETCH"]}),
        "spec.http[0].corsPolicy.allowMethods[0]",
    ),
    deny(
        "VirtualService", vs_http(corsPolicy={"maxAge": "1500ms"}), "spec.http[0].corsPolicy.maxAge"
    ),
    deny(
        "VirtualService",
        {"hosts": ["a.example.com"], "tls": [{"route": ROUTE}]},
        "spec.tls[0].match",
    ),
    deny(
        "VirtualService",
        {
            "hosts": ["a.example.com"],
            "tls": [{"match": [{"sniHosts": ["b.example.com"]}], "route": ROUTE}],
        },
        "spec.tls[0].match[0].sniHosts[0]",
    ),
    deny("VirtualService", {"hosts": ["a.example.com"], "tcp": [{}]}, "spec.tcp[0].route"),
    deny(
        "VirtualService",
        {
            "hosts": ["a.example.com"],
            "tcp": [{"match": [{"destinationSubnets": ["10.0.0.0/33"]}], "route": ROUTE}],
        },
        "spec.tcp[0].match[0].destinationSubnets[0]",
    ),
    warn("VirtualService", vs(http=[{"route": ROUTE}, {"route": ROUTE}]), "spec.http[1]"),
]


@pytest.mark.parametrize("row", VIRTUAL_SERVICE, ids=ids(VIRTUAL_SERVICE))
def test_virtual_service(row: Row) -> None:
    assert_row(row)


VIRTUAL_SERVICE_DISCREPANCIES = [
    pytest.param(
        deny(
            "VirtualService",
            vs_http(rewrite={"uriRegexRewrite": {"match": "(?=a)", "rewrite": "b"}}),
            "spec.http[0].rewrite.uriRegexRewrite.match",
        ),
        id="uriRegexRewrite-match-path",
    ),
    pytest.param(
        deny(
            "VirtualService",
            vs_http(corsPolicy={"allowOrigins": [{"exact": ""}]}),
            "spec.http[0].corsPolicy.allowOrigins[0]",
        ),
        id="corsPolicy-empty-origin",
    ),
]


@pytest.mark.parametrize("row", VIRTUAL_SERVICE_DISCREPANCIES)
def test_virtual_service_discrepancies(row: Row) -> None:
    assert_row(row)
