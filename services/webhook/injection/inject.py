"""Inject one pod: the mutated pod and the RFC 6902 JSONPatch that produces it.

Following reference 6.6, the final pod is built as a whole and the patch is derived from the
difference, restricted to what injection touches (labels, annotations, init containers,
containers, volumes): a missing map or list is added whole, a present list is replaced, map
keys are added one by one with ``/`` and ``~`` escaped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from meshguard.webhook.injection import annotations as pod_annotations
from meshguard.webhook.injection import probes, sidecar
from meshguard.webhook.injection.bootstrap import Workload
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.decision import STATUS_ANNOTATION

TLS_MODE_LABEL = "security.meshguard.io/tlsMode"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"

Pod = dict[str, Any]
Operation = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Injected:
    pod: Pod
    patch: list[Operation]


def inject(pod: Pod, namespace: str, config: InjectionConfig) -> Injected:
    """Raises :class:`~meshguard.webhook.injection.annotations.InjectionError` on bad input."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    options = pod_annotations.parse(metadata.get("annotations") or {}, config)
    app_containers = list(spec.get("containers") or [])
    if not app_containers:
        raise pod_annotations.InjectionError("spec.containers: the pod has no containers")
    app_probers: dict[str, Any] = {}
    if options.rewrite_probes:
        app_containers, app_probers = probes.rewrite(app_containers, config.status_port)
    labels = dict(metadata.get("labels") or {})
    parts = sidecar.render(_workload(pod, namespace, labels), options, config, app_probers)

    after = copy.deepcopy(pod)
    after_meta = after.setdefault("metadata", {})
    after_spec = after.setdefault("spec", {})
    after_meta["labels"] = {**labels, TLS_MODE_LABEL: labels.get(TLS_MODE_LABEL, "meshguard")}
    init = list(spec.get("initContainers") or [])
    if parts.init_container is not None:
        init.append(parts.init_container)  # last: app init containers run before capture exists
    if options.hold_application:
        containers = [parts.proxy_container, *app_containers]
    else:
        containers = [*app_containers, parts.proxy_container]
    if init:
        after_spec["initContainers"] = init
    after_spec["containers"] = containers
    after_spec["volumes"] = [*(spec.get("volumes") or []), *parts.volumes]
    status = {
        "initContainers": [] if parts.init_container is None else [parts.init_container["name"]],
        "containers": [parts.proxy_container["name"]],
        "volumes": [v["name"] for v in parts.volumes],
        "revision": config.revision,
    }
    existing = dict(metadata.get("annotations") or {})
    after_meta["annotations"] = {
        **existing,
        DEFAULT_CONTAINER: existing.get(DEFAULT_CONTAINER, app_containers[0]["name"]),
        "prometheus.io/scrape": existing.get("prometheus.io/scrape", "true"),
        "prometheus.io/port": existing.get("prometheus.io/port", str(config.prometheus_port)),
        "prometheus.io/path": existing.get("prometheus.io/path", "/stats/prometheus"),
        STATUS_ANNOTATION: json.dumps(status, sort_keys=True, separators=(",", ":")),
    }
    return Injected(after, json_patch(pod, after))


def json_patch(before: Pod, after: Pod) -> list[Operation]:
    ops: list[Operation] = []
    for field in ("labels", "annotations"):
        old = (before.get("metadata") or {}).get(field)
        new = after["metadata"].get(field)
        if new is None or new == old:
            continue
        if old is None:
            if "metadata" not in before:
                ops.append({"op": "add", "path": "/metadata", "value": {}})
            ops.append({"op": "add", "path": f"/metadata/{field}", "value": new})
            continue
        for key, value in new.items():
            if old.get(key) != value:
                ops.append(
                    {"op": "add", "path": f"/metadata/{field}/{_escape(key)}", "value": value}
                )
    before_spec = before.get("spec") or {}
    for field in ("initContainers", "containers", "volumes"):
        new = after["spec"].get(field)
        if new is None or new == before_spec.get(field):
            continue
        op = "replace" if field in before_spec else "add"
        ops.append({"op": op, "path": f"/spec/{field}", "value": new})
    return ops


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _workload(pod: Pod, namespace: str, labels: dict[str, str]) -> Workload:
    metadata = pod.get("metadata") or {}
    name = (
        labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or _owner_name(metadata)
        or metadata.get("name")
        or "workload"
    )
    ports: list[int] = []
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            if (
                port.get("protocol", "TCP") == "TCP"
                and isinstance(number, int)
                and number not in ports
            ):
                ports.append(number)
    return Workload(namespace, str(name), labels, tuple(ports))


def _owner_name(metadata: dict[str, Any]) -> str | None:
    owners = metadata.get("ownerReferences") or []
    if not owners:
        return None
    name = str(owners[0].get("name", ""))
    if owners[0].get("kind") == "ReplicaSet":
        name = name.rsplit("-", 1)[0]  # strip the pod-template hash: the Deployment's name
    return name or None
