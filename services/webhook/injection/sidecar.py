"""Render what an injected pod gets: init container, sidecar container, volumes, metadata.

The sidecar container runs ``meshguard agent`` from the proxy image (Envoy + meshguard +
iptables): the agent makes the key in the pod, gets the SVID from the mesh CA, writes the SDS
files and then starts Envoy with the bootstrap rendered here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from meshguard.webhook.injection import bootstrap, iptables
from meshguard.webhook.injection.annotations import PodOptions
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.decision import INIT_CONTAINER, PROXY_CONTAINER

ENVOY_VOLUME = "meshguard-envoy"
TOKEN_VOLUME = "meshguard-token"
ROOT_VOLUME = "meshguard-ca-root"
TOKEN_DIR = "/var/run/secrets/tokens"
TOKEN_FILE = "meshguard-token"
ROOT_DIR = "/var/run/secrets/meshguard"


@dataclasses.dataclass(frozen=True, slots=True)
class SidecarParts:
    init_container: dict[str, Any] | None
    proxy_container: dict[str, Any]
    volumes: list[dict[str, Any]]


def render(
    workload: bootstrap.Workload,
    options: PodOptions,
    config: InjectionConfig,
    app_probers: dict[str, Any],
) -> SidecarParts:
    intercepted = options.interception == "REDIRECT"
    envoy = bootstrap.render(workload, config, mtls_mode=options.mtls_mode, intercepted=intercepted)
    return SidecarParts(
        _init_container(options, config) if intercepted else None,
        _proxy_container(envoy, options, config, app_probers),
        _volumes(config),
    )


def sidecar_ports(config: InjectionConfig) -> tuple[int, ...]:
    return (config.inbound_port, config.status_port, config.admin_port, config.prometheus_port)


def _init_container(options: PodOptions, config: InjectionConfig) -> dict[str, Any]:
    capture = iptables.Capture(
        inbound_port=config.inbound_port,
        outbound_port=config.outbound_port,
        proxy_uid=config.proxy_uid,
        include_ports=options.include_inbound,
        exclude_ports=sidecar_ports(config) + options.exclude_inbound,
        exclude_outbound_ports=options.exclude_outbound,
        exclude_outbound_cidrs=options.exclude_outbound_cidrs,
        include_outbound_cidrs=options.include_outbound_cidrs,
    )
    return {
        "name": INIT_CONTAINER,
        "image": options.proxy_image,
        "command": ["sh", "-c", iptables.script(capture)],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }


def _proxy_container(
    envoy: dict[str, Any], options: PodOptions, config: InjectionConfig, app_probers: dict[str, Any]
) -> dict[str, Any]:
    env = [
        {"name": "MESHGUARD_CA_ADDRESS", "value": config.ca_address},
        {"name": "MESHGUARD_ROOT_BUNDLE", "value": f"{ROOT_DIR}/root-cert.pem"},
        {"name": "MESHGUARD_TOKEN_FILE", "value": f"{TOKEN_DIR}/{TOKEN_FILE}"},
        {"name": "MESHGUARD_OUTPUT_DIR", "value": config.sds_dir},
        {"name": "MESHGUARD_STATUS_PORT", "value": str(config.status_port)},
        {"name": "MESHGUARD_ENVOY_ADMIN_PORT", "value": str(config.admin_port)},
        {"name": "MESHGUARD_ENVOY_BOOTSTRAP", "value": json.dumps(envoy, separators=(",", ":"))},
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ]
    if app_probers:
        env.append(
            {"name": "MESHGUARD_APP_PROBERS", "value": json.dumps(app_probers, sort_keys=True)}
        )
    ready = {"path": "/healthz/ready", "port": config.status_port}
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": options.proxy_image,
        "command": ["meshguard", "agent"],
        "env": env,
        "ports": [
            {"name": "http-envoy-prom", "containerPort": config.prometheus_port, "protocol": "TCP"}
        ],
        "startupProbe": {
            "httpGet": ready,
            "periodSeconds": 1,
            "timeoutSeconds": 3,
            "failureThreshold": 600,
        },
        "readinessProbe": {
            "httpGet": ready,
            "initialDelaySeconds": options.readiness.initial_delay_seconds,
            "periodSeconds": options.readiness.period_seconds,
            "failureThreshold": options.readiness.failure_threshold,
            "timeoutSeconds": 3,
        },
        "resources": options.resources.as_k8s(),
        "securityContext": {
            "runAsUser": config.proxy_uid,
            "runAsGroup": config.proxy_uid,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": ENVOY_VOLUME, "mountPath": config.sds_dir},
            {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": ROOT_VOLUME, "mountPath": ROOT_DIR, "readOnly": True},
        ],
    }
    if options.hold_application:
        # The kubelet starts containers in order and waits for postStart: the app starts only
        # once the sidecar has its certificate and Envoy is LIVE.
        container["lifecycle"] = {
            "postStart": {"exec": {"command": ["meshguard", "agent", "wait"]}}
        }
    return container


def _volumes(config: InjectionConfig) -> list[dict[str, Any]]:
    token = {
        "path": TOKEN_FILE,
        "audience": config.token_audience,
        "expirationSeconds": config.token_expiration_seconds,
    }
    return [
        {"name": ENVOY_VOLUME, "emptyDir": {"medium": "Memory"}},
        {"name": TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}},
        {"name": ROOT_VOLUME, "configMap": {"name": config.root_configmap}},
    ]


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
