"""Move the app's HTTP/TCP/gRPC probes onto the agent's status port.

Under STRICT mTLS and inbound capture, the kubelet's plain-text probes would be refused by the
sidecar; the agent runs the original probe from inside the pod instead (see
:mod:`meshguard.webhook.agent.probes`). Named ports are resolved so the agent needs no pod spec.
"""

from __future__ import annotations

import copy
from typing import Any

_KINDS = {"readinessProbe": "readyz", "livenessProbe": "livez", "startupProbe": "startupz"}
_ACTIONS = ("httpGet", "tcpSocket", "grpc")


def rewrite(
    containers: list[dict[str, Any]], status_port: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Containers with rewritten probes, and the originals keyed by their new path."""
    rewritten, originals = [], {}
    for container in containers:
        container = copy.deepcopy(container)
        ports = {
            p.get("name"): p.get("containerPort")
            for p in container.get("ports") or []
            if p.get("name")
        }
        for field, kind in _KINDS.items():
            probe = container.get(field)
            action = next((a for a in _ACTIONS if isinstance(probe, dict) and a in probe), None)
            if probe is None or action is None:
                continue
            original = copy.deepcopy(probe[action])
            port = original.get("port")
            original["port"] = ports.get(port, port) if isinstance(port, str) else port
            if original["port"] == status_port:
                continue
            path = f"/app-health/{container['name']}/{kind}"
            originals[path] = {action: original, "timeoutSeconds": probe.get("timeoutSeconds", 1)}
            del probe[action]
            probe["httpGet"] = {"path": path, "port": status_port, "scheme": "HTTP"}
        rewritten.append(container)
    return rewritten, originals
