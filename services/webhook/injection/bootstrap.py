"""The sidecar's Envoy bootstrap, rendered at injection time from the pod and the mesh config.

Inbound listener (``inbound_port``): captured connections are matched by their original
destination port (one filter chain per app port); mutual TLS with the workload's SVID from the
agent's SDS files, and under PERMISSIVE a plain-text chain as well (STRICT has none, so plain
text is refused). Every HTTP request goes through ``ext_authz`` (meshguard authz; the peer's
SPIFFE ID arrives as ``source.principal``, the pod's namespace and labels as
``context_extensions``) and the ``ratelimit`` filter (meshguard ratelimit, descriptors
``namespace`` and ``workload``), then to the app on loopback. With interception NONE there is no
redirect: peers dial ``inbound_port`` and the listener serves the first app port.

Outbound listener (``outbound_port``, loopback only): what the app dials is captured there by
the init container's rules and sent to its original destination (an ``ORIGINAL_DST`` cluster)
over mutual TLS with this workload's SVID, accepting any peer of the trust domain, so meshed
destinations see this workload as ``source.principal``. Destinations outside the mesh are
excluded from capture (``excludeOutboundIPRanges`` / ``excludeOutboundPorts``, or only the
mesh's ranges named in ``includeOutboundIPRanges``). Without
interception, a caller names the destination in ``x-envoy-original-dst-host``; the inbound
listener strips that header before the app.
A last listener exposes Envoy's Prometheus stats on ``prometheus_port``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshguard.webhook.injection.config import InjectionConfig

JsonObject = dict[str, Any]

_T = "type.googleapis.com/"
_HCM = _T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_HTTP2 = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": _T + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}
AUTHZ_CLUSTER = "meshguard-authz"
DESTINATION_HEADER = "x-envoy-original-dst-host"
OUTBOUND_CLUSTER = "outbound|original-dst"
RATELIMIT_CLUSTER = "meshguard-ratelimit"


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    name: str
    labels: Mapping[str, str]
    app_ports: tuple[int, ...]  # ports the inbound listener serves, first is the default


def labels_extension(labels: Mapping[str, str]) -> str:
    """``k=v,k2=v2`` (sorted): how meshguard authz reads the workload's labels."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def render(
    workload: Workload, config: InjectionConfig, *, mtls_mode: str, intercepted: bool
) -> JsonObject:
    sds_dir = config.sds_dir
    chains: list[JsonObject] = []
    ports = workload.app_ports if intercepted else workload.app_ports[:1]
    for port in ports:
        match: JsonObject = {"destination_port": port} if intercepted else {}
        hcm = _http_manager(workload, config, port)
        chains.append(
            {
                "name": f"inbound-mtls-{port}",
                "filter_chain_match": {**match, "transport_protocol": "tls"},
                "transport_socket": _downstream_tls(sds_dir),
                "filters": [hcm],
            }
        )
        if mtls_mode == "PERMISSIVE":
            chains.append(
                {"name": f"inbound-plain-{port}", "filter_chain_match": match, "filters": [hcm]}
            )
    listener_filters = [
        _typed(
            "envoy.filters.listener.tls_inspector",
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        )
    ]
    if intercepted:
        listener_filters.insert(
            0,
            _typed(
                "envoy.filters.listener.original_dst",
                "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
            ),
        )
    # A pod without TCP ports has nothing to serve inbound (Envoy refuses a chainless listener).
    inbound = [
        {
            "name": "inbound",
            "address": _address("0.0.0.0", config.inbound_port),
            "listener_filters": listener_filters,
            "filter_chains": chains,
        }
    ][: 1 if chains else 0]
    clusters = [_static_cluster(f"inbound|{p}", "127.0.0.1", p) for p in ports]
    clusters.append(_outbound_cluster(config))
    clusters.append(_dns_cluster(AUTHZ_CLUSTER, config.authz_address, http2=True))
    clusters.append(_dns_cluster(RATELIMIT_CLUSTER, config.ratelimit_address, http2=True))
    clusters.append(_static_cluster("prometheus-stats", "127.0.0.1", config.admin_port))
    return {
        "node": {
            "id": f"sidecar~{workload.namespace}~{workload.name}",
            "cluster": f"{workload.name}.{workload.namespace}",
        },
        "admin": {"address": _address("127.0.0.1", config.admin_port)},
        "static_resources": {
            "listeners": [
                *inbound,
                _outbound_listener(config, intercepted=intercepted),
                _prometheus_listener(config.prometheus_port),
            ],
            "clusters": clusters,
        },
    }


def _http_manager(workload: Workload, config: InjectionConfig, port: int) -> JsonObject:
    route: JsonObject = {
        "match": {"prefix": "/"},
        "route": {
            "cluster": f"inbound|{port}",
            "rate_limits": [
                {
                    "actions": [
                        {
                            "generic_key": {
                                "descriptor_key": "namespace",
                                "descriptor_value": workload.namespace,
                            }
                        },
                        {
                            "generic_key": {
                                "descriptor_key": "workload",
                                "descriptor_value": workload.name,
                            }
                        },
                    ]
                }
            ],
        },
        "typed_per_filter_config": {
            "envoy.filters.http.ext_authz": {
                "@type": _T + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                "check_settings": {
                    "context_extensions": {
                        "namespace": workload.namespace,
                        "labels": labels_extension(workload.labels),
                    }
                },
            }
        },
    }
    ext_authz = {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": _T + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "grpc_service": {
                "envoy_grpc": {"cluster_name": AUTHZ_CLUSTER},
                "timeout": f"{config.authz_timeout_ms / 1000}s",
            },
            "failure_mode_allow": False,
            "include_peer_certificate": True,
        },
    }
    ratelimit = {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": _T + "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": config.ratelimit_domain,
            "timeout": f"{config.ratelimit_timeout_ms / 1000}s",
            "failure_mode_deny": not config.ratelimit_fail_open,
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": RATELIMIT_CLUSTER}},
                "transport_api_version": "V3",
            },
        },
    }
    router = _typed("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router")
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": _HCM,
            "stat_prefix": f"inbound_{port}",
            "forward_client_cert_details": "SANITIZE_SET",
            "set_current_client_cert_details": {"uri": True},
            "route_config": {
                "name": f"inbound-{port}",
                # Steering for the caller's sidecar only; the app must not see (or trust) it.
                # Envoy reads it when picking the upstream host, so the outbound side cannot
                # drop it at the route: the receiving side does.
                "request_headers_to_remove": [DESTINATION_HEADER],
                "virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [route]}],
            },
            "http_filters": [ext_authz, ratelimit, router],
        },
    }


def _sds(sds_dir: str, name: str) -> JsonObject:
    return {
        "name": name,
        "sds_config": {
            "resource_api_version": "V3",
            "path_config_source": {
                "path": f"{sds_dir}/{name}.yaml",
                "watched_directory": {"path": sds_dir},
            },
        },
    }


def _downstream_tls(sds_dir: str) -> JsonObject:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificate_sds_secret_configs": [_sds(sds_dir, "default")],
                "validation_context_sds_secret_config": _sds(sds_dir, "ROOTCA"),
            },
        },
    }


def upstream_mtls(sds_dir: str, trust_domain: str) -> JsonObject:
    """Originate mTLS with this workload's SVID; the peer must hold an SVID of the trust domain."""
    peer = {"san_type": "URI", "matcher": {"prefix": f"spiffe://{trust_domain}/"}}
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [_sds(sds_dir, "default")],
                "combined_validation_context": {
                    "default_validation_context": {"match_typed_subject_alt_names": [peer]},
                    "validation_context_sds_secret_config": _sds(sds_dir, "ROOTCA"),
                },
            },
        },
    }


def _outbound_cluster(config: InjectionConfig) -> JsonObject:
    return {
        "name": OUTBOUND_CLUSTER,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "1s",
        "original_dst_lb_config": {"use_http_header": True},
        "transport_socket": upstream_mtls(config.sds_dir, config.trust_domain),
    }


def _outbound_listener(config: InjectionConfig, *, intercepted: bool) -> JsonObject:
    route = {"match": {"prefix": "/"}, "route": {"cluster": OUTBOUND_CLUSTER}}
    router = _typed("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router")
    listener: JsonObject = {
        "name": "outbound",
        "address": _address("127.0.0.1", config.outbound_port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": "outbound",
                            "route_config": {
                                "name": "outbound",
                                "virtual_hosts": [
                                    {"name": "outbound", "domains": ["*"], "routes": [route]}
                                ],
                            },
                            "http_filters": [router],
                        },
                    }
                ]
            }
        ],
    }
    if intercepted:
        listener["listener_filters"] = [
            _typed(
                "envoy.filters.listener.original_dst",
                "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
            )
        ]
    return listener


def _prometheus_listener(port: int) -> JsonObject:
    route = {"match": {"path": "/stats/prometheus"}, "route": {"cluster": "prometheus-stats"}}
    router = _typed("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router")
    return {
        "name": "prometheus",
        "address": _address("0.0.0.0", port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": "prometheus",
                            "route_config": {
                                "virtual_hosts": [
                                    {"name": "stats", "domains": ["*"], "routes": [route]}
                                ]
                            },
                            "http_filters": [router],
                        },
                    }
                ]
            }
        ],
    }


def _typed(name: str, type_name: str) -> JsonObject:
    return {"name": name, "typed_config": {"@type": _T + type_name}}


def _address(host: str, port: int) -> JsonObject:
    return {"socket_address": {"address": host, "port_value": port}}


def _static_cluster(name: str, host: str, port: int) -> JsonObject:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _endpoints(name, host, port),
    }


def _dns_cluster(name: str, address: str, *, http2: bool) -> JsonObject:
    host, _, port = address.rpartition(":")
    cluster: JsonObject = {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": _endpoints(name, host, int(port)),
    }
    if http2:
        cluster["typed_extension_protocol_options"] = _HTTP2
    return cluster


def _endpoints(name: str, host: str, port: int) -> JsonObject:
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}],
    }
