"""The precedence table of :mod:`meshguard.webhook.injection.decision`, row by row."""

from __future__ import annotations

import pytest

from meshguard.webhook.injection.decision import decide, webhook_selects


@pytest.mark.parametrize(
    ("ns", "pod", "selected"),
    [
        ({"meshguard-injection": "disabled"}, {"sidecar.meshguard.io/inject": "true"}, False),
        ({"istio-injection": "enabled"}, {"sidecar.meshguard.io/inject": "true"}, False),
        ({"istio.io/rev": "canary"}, {}, False),
        ({"meshguard-injection": "enabled"}, {}, True),
        ({"meshguard-injection": "enabled"}, {"sidecar.meshguard.io/inject": "false"}, False),
        ({"meshguard.io/rev": "default"}, {}, True),
        ({"meshguard.io/rev": "canary"}, {}, False),
        ({}, {"sidecar.meshguard.io/inject": "true"}, True),
        ({}, {}, False),
    ],
)
def test_webhook_selectors(ns: dict[str, str], pod: dict[str, str], selected: bool) -> None:
    assert webhook_selects(ns, pod) is selected


def _pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app"}]},
    }


def test_label_beats_annotation_and_policy() -> None:
    pod = _pod({"sidecar.meshguard.io/inject": "true"}, {"sidecar.meshguard.io/inject": "false"})
    assert decide(pod, "shop", policy="disabled").inject
    assert not decide(_pod(annotations={"sidecar.meshguard.io/inject": "false"}), "shop").inject
    assert decide(_pod(annotations={"sidecar.meshguard.io/inject": "maybe"}), "shop").inject
    assert not decide(_pod(), "shop", policy="disabled").inject


def test_system_namespaces_and_istio_pods_are_skipped() -> None:
    assert decide(_pod({"sidecar.meshguard.io/inject": "true"}), "kube-system").reason.startswith(
        "system namespace"
    )
    istio = _pod()
    istio["spec"]["containers"].append({"name": "istio-proxy"})
    assert decide(istio, "shop").reason == "Istio injects this pod"
