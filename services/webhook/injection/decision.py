"""Whether a pod gets the meshguard sidecar: the webhook's selectors, then the injector's policy.

The API server only calls ``/mutate`` when the MutatingWebhookConfiguration's selectors match
(:func:`webhook_selects`, mirrored by the chart); the injector then applies :func:`decide`.
Precedence, first matching row wins (also in examples/injection/README.md):

| #  | condition                                                           | result        |
|----|---------------------------------------------------------------------|---------------|
|    | *selectors (API server)*                                            |               |
| 1  | namespace ``meshguard-injection=disabled``                          | skip          |
| 2  | namespace ``istio-injection=enabled`` or ``istio.io/rev`` set       | skip          |
| 3  | namespace ``meshguard-injection=enabled`` or ``meshguard.io/rev``   | call, unless  |
|    | equal to the revision                                               | pod label     |
|    |                                                                     | inject=false  |
| 4  | no meshguard namespace label, pod label ``<inject>=true``           | call          |
| 5  | anything else                                                       | skip          |
|    | *injector (``decide``)*                                             |               |
| 6  | ``spec.hostNetwork: true``                                          | skip          |
| 7  | already injected (status annotation or ``meshguard-proxy``)         | skip          |
| 8  | Istio's: ``sidecar.istio.io/inject=true`` (label or annotation),    | skip          |
|    | ``sidecar.istio.io/status`` or an ``istio-proxy`` container         |               |
| 9  | kube-system, kube-public, kube-node-lease, local-path-storage       | skip          |
| 10 | pod label, else annotation, ``<inject>``: ``true`` / ``false``      | inject / skip |
| 11 | the configured policy (``enabled`` by default)                      | per policy    |

``<inject>`` is ``sidecar.meshguard.io/inject``; any other value than true/false is ignored.
Row 1 means a pod label cannot override a disabled namespace, as in Istio. Rows 2 and 8 keep
both meshes from ever injecting the same pod.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

NAMESPACE_LABEL = "meshguard-injection"
REVISION_LABEL = "meshguard.io/rev"
INJECT_KEY = "sidecar.meshguard.io/inject"
STATUS_ANNOTATION = "sidecar.meshguard.io/status"
PROXY_CONTAINER = "meshguard-proxy"
INIT_CONTAINER = "meshguard-init"
SYSTEM_NAMESPACES = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)

_ISTIO_INJECT = "sidecar.istio.io/inject"
_ISTIO_STATUS = "sidecar.istio.io/status"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    inject: bool
    reason: str


def webhook_selects(
    namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str], revision: str = "default"
) -> bool:
    """Rows 1-5: whether the API server sends the pod to ``/mutate`` at all."""
    ns_value = namespace_labels.get(NAMESPACE_LABEL)
    if ns_value == "disabled":
        return False
    if namespace_labels.get("istio-injection") == "enabled" or "istio.io/rev" in namespace_labels:
        return False
    pod_value = pod_labels.get(INJECT_KEY)
    if ns_value == "enabled" or (
        ns_value is None and namespace_labels.get(REVISION_LABEL) == revision
    ):
        return pod_value != "false"
    if ns_value is None and REVISION_LABEL not in namespace_labels:
        return pod_value == "true"
    return False


def namespace_selectors(revision: str = "default") -> tuple[str, ...]:
    """Label selectors, OR-ed, of the namespaces where rows 1-5 can send a pod to ``/mutate``.

    The same rows as :func:`webhook_selects`, for whoever must prepare such namespaces before
    their pods start (the CA's root bundle): labelled namespaces, and unlabelled ones, whose
    pods may opt in one by one (row 4). The injector never injects in system namespaces
    (row 9), which a selector cannot say by name.
    """
    not_istio = "istio-injection!=enabled,!istio.io/rev"
    return (
        f"{NAMESPACE_LABEL}=enabled,{not_istio}",
        f"!{NAMESPACE_LABEL},{REVISION_LABEL}={revision},{not_istio}",
        f"!{NAMESPACE_LABEL},!{REVISION_LABEL},{not_istio}",
    )


def decide(pod: Mapping[str, Any], namespace: str, policy: str = "enabled") -> Decision:
    """Rows 6-11, on the pod as the API server sent it."""
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    containers = {c.get("name") for c in spec.get("containers") or []}
    containers |= {c.get("name") for c in spec.get("initContainers") or []}
    if spec.get("hostNetwork") is True:
        return Decision(False, "hostNetwork pods are never injected")
    if STATUS_ANNOTATION in annotations or PROXY_CONTAINER in containers:
        return Decision(False, "already injected")
    if (
        "true" in (labels.get(_ISTIO_INJECT), annotations.get(_ISTIO_INJECT))
        or _ISTIO_STATUS in annotations
        or "istio-proxy" in containers
    ):
        return Decision(False, "Istio injects this pod")
    if namespace in SYSTEM_NAMESPACES:
        return Decision(False, f"system namespace {namespace}")
    explicit = labels.get(INJECT_KEY, annotations.get(INJECT_KEY))
    if explicit in ("true", "false"):
        return Decision(explicit == "true", f"{INJECT_KEY}={explicit}")
    if policy == "enabled":
        return Decision(True, "injection policy enabled")
    return Decision(False, f"injection policy {policy}")
