"""``POST /mutate``: AdmissionReview v1 in, allowed + JSONPatch (or a skip, or a refusal) out.

Pure and side-effect free, so a dry-run request gets exactly the same answer (the webhook
declares ``sideEffects: None``); the key and certificate are made later, in the pod.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from prometheus_client import Counter

from meshguard.webhook.injection.annotations import InjectionError
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.decision import decide
from meshguard.webhook.injection.inject import inject

log = logging.getLogger(__name__)

INJECTIONS = Counter("meshguard_injections_total", "Pods seen by /mutate, by result", ["result"])


def mutate_review(review: dict[str, Any], config: InjectionConfig | None = None) -> dict[str, Any]:
    """The AdmissionReview answer for one pod review."""
    config = config or InjectionConfig()
    request = review.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    answer = {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": review.get("kind", "AdmissionReview"),
        "response": response,
    }
    pod = request.get("object")
    if request.get("operation", "CREATE") != "CREATE" or not isinstance(pod, dict):
        INJECTIONS.labels("skipped").inc()
        return answer
    namespace = (
        request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or "default"
    )
    decision = decide(pod, namespace, config.policy)
    dry_run = bool(request.get("dryRun"))
    if not decision.inject:
        INJECTIONS.labels("skipped").inc()
        log.info("injection skipped", extra={"reason": decision.reason, "dry_run": dry_run})
        return answer
    try:
        injected = inject(pod, namespace, config)
    except InjectionError as exc:
        INJECTIONS.labels("refused").inc()
        response.update(allowed=False, status={"code": 400, "message": f"sidecar injection: {exc}"})
        return answer
    INJECTIONS.labels("injected").inc()
    response["patchType"] = "JSONPatch"
    response["patch"] = base64.b64encode(json.dumps(injected.patch).encode()).decode("ascii")
    log.info("sidecar injected", extra={"namespace": namespace, "dry_run": dry_run})
    return answer
