"""Mesh-wide injection settings (chart values), and the pod's own choices from annotations."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Resources:
    cpu_request: str | None = "100m"
    memory_request: str | None = "128Mi"
    cpu_limit: str | None = "2000m"
    memory_limit: str | None = "1024Mi"

    def as_k8s(self) -> dict[str, dict[str, str]]:
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        out = {
            "requests": {k: v for k, v in requests.items() if v is not None},
            "limits": {k: v for k, v in limits.items() if v is not None},
        }
        return {k: v for k, v in out.items() if v}


@dataclasses.dataclass(frozen=True, slots=True)
class InjectionConfig:
    """What every injected pod shares. Ports are the in-pod ports of the sidecar."""

    proxy_image: str = "ghcr.io/meshguard/proxy:0.1.0"  # Envoy + meshguard + iptables
    policy: str = "enabled"  # the injector's default when the pod does not say
    trust_domain: str = "cluster.local"
    ca_address: str = "meshguard-ca.meshguard-system.svc:15012"
    authz_address: str = "meshguard-authz.meshguard-system.svc:9000"
    ratelimit_address: str = "meshguard-ratelimit.meshguard-system.svc:8081"
    ratelimit_domain: str = "mesh"
    mtls_mode: str = "STRICT"
    proxy_uid: int = 1337
    inbound_port: int = 15006
    outbound_port: int = 15001
    status_port: int = 15020
    admin_port: int = 15000
    prometheus_port: int = 15090
    sds_dir: str = "/etc/meshguard/sds"
    token_audience: str = "meshguard-ca"
    token_expiration_seconds: int = 43200
    root_configmap: str = "meshguard-ca-root-cert"
    authz_timeout_ms: int = 500
    ratelimit_timeout_ms: int = 100
    ratelimit_fail_open: bool = True
    rewrite_app_probes: bool = True
    resources: Resources = Resources()
    revision: str = "default"
