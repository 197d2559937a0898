"""The pod cases of the shared conformance corpus, translated to meshguard's names.

The corpus is written for Istio; meshguard reads the same rules under its own domain, so each
case is translated before it is run: ``istio-injection`` → ``meshguard-injection``,
``istio.io/rev`` → ``meshguard.io/rev``, and the ``sidecar.istio.io`` / ``proxy.istio.io``
annotation prefixes → ``sidecar.meshguard.io`` / ``proxy.meshguard.io``. The webhook's selectors
are emulated (the API server applies them before calling us). Injected pods get the JSONPatch
applied with the ``jsonpatch`` library and are checked field by field.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from meshguard.webhook.injection.decision import webhook_selects
from meshguard.webhook.injection.review import mutate_review
from tests.harness.paths import CONFORMANCE

CORPUS = CONFORMANCE / "webhook" / "pods"
_RENAMES = [
    ("istio-injection", "meshguard-injection"),
    ("istio.io/rev", "meshguard.io/rev"),
    ("sidecar.istio.io", "sidecar.meshguard.io"),
    ("proxy.istio.io", "proxy.meshguard.io"),
]


def _translate(text: str) -> str:
    for old, new in _RENAMES:
        text = text.replace(old, new)
    return text


def _case(path: Path) -> tuple[dict[str, list[str]], dict[str, Any]]:
    headers: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        headers.setdefault(key, []).append(value)
    return headers, yaml.safe_load(_translate(path.read_text()))


def _labels(text: str) -> dict[str, str]:
    if text == "(none)":
        return {}
    return dict(pair.split("=", 1) for pair in _translate(text).split(","))


def review(pod: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "operation": "CREATE",
            "namespace": pod["metadata"]["namespace"],
            "object": pod,
            "dryRun": dry_run,
        },
    }


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(pod, ops)  # type: ignore[no-any-return]


CASES = sorted(CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CASES, reason="conformance corpus not present")
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_pod_case(path: Path) -> None:
    headers, pod = _case(path)
    expect = headers["expect"][0]
    ns_labels = _labels(headers["namespace-labels"][0])
    selected = webhook_selects(ns_labels, pod["metadata"].get("labels") or {})
    answer = mutate_review(review(pod))["response"] if selected else None
    if expect.startswith("skip"):
        assert answer is None or (answer["allowed"] and "patch" not in answer)
        return
    assert answer is not None, "the webhook selectors must send this pod to /mutate"
    assert answer["uid"] == "u-1"
    if expect.startswith("reject"):
        assert answer["allowed"] is False
        assert "excludeOutboundPorts" in answer["status"]["message"]
        return
    assert answer["allowed"] is True
    after = patched(pod, answer)
    check_injected(after)
    CHECKS.get(path.stem[:6], lambda _: None)(after)


def check_injected(pod: dict[str, Any]) -> None:
    spec, meta = pod["spec"], pod["metadata"]
    names = [c["name"] for c in spec["containers"]]
    assert "meshguard-proxy" in names
    assert [c["name"] for c in spec["initContainers"]][-1] == "meshguard-init"
    assert {"meshguard-envoy", "meshguard-token", "meshguard-ca-root"} <= {
        v["name"] for v in spec["volumes"]
    }
    assert meta["labels"]["security.meshguard.io/tlsMode"] == "meshguard"
    status = json.loads(meta["annotations"]["sidecar.meshguard.io/status"])
    assert status["containers"] == ["meshguard-proxy"]
    proxy = _container(pod, "meshguard-proxy")
    assert proxy["securityContext"]["runAsUser"] == 1337
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15020}
    token = next(v for v in spec["volumes"] if v["name"] == "meshguard-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "meshguard-ca"
    init = next(c for c in spec["initContainers"] if c["name"] == "meshguard-init")
    assert "REDIRECT --to-ports 15006" in init["command"][2]
    assert init["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def _env(container: dict[str, Any], name: str) -> str:
    return next(e["value"] for e in container["env"] if e["name"] == name)


def _probe_rewrite(pod: dict[str, Any]) -> None:
    web = _container(pod, "web")
    assert web["readinessProbe"]["httpGet"]["path"] == "/app-health/web/readyz"
    assert web["readinessProbe"]["httpGet"]["port"] == 15020
    assert web["readinessProbe"]["periodSeconds"] == 5
    assert web["livenessProbe"]["httpGet"] == {
        "path": "/app-health/web/livez",
        "port": 15020,
        "scheme": "HTTP",
    }
    assert "tcpSocket" not in web["livenessProbe"]
    probers = json.loads(_env(_container(pod, "meshguard-proxy"), "MESHGUARD_APP_PROBERS"))
    assert probers["/app-health/web/readyz"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert probers["/app-health/web/livez"]["tcpSocket"] == {"port": 8080}


def _resources(pod: dict[str, Any]) -> None:
    assert _container(pod, "meshguard-proxy")["resources"] == {
        "requests": {"cpu": "250m"},
        "limits": {"memory": "512Mi"},
    }


def _hold(pod: dict[str, Any]) -> None:
    first = pod["spec"]["containers"][0]
    assert first["name"] == "meshguard-proxy"
    assert first["lifecycle"]["postStart"]["exec"]["command"] == ["meshguard", "agent", "wait"]


def _plain(pod: dict[str, Any]) -> None:
    assert pod["spec"]["containers"][-1]["name"] == "meshguard-proxy"
    assert "lifecycle" not in pod["spec"]["containers"][-1]
    assert _container(pod, "meshguard-proxy")["resources"]["limits"] == {
        "cpu": "2000m",
        "memory": "1024Mi",
    }


CHECKS = {"pod-09": _probe_rewrite, "pod-11": _resources, "pod-12": _hold, "pod-01": _plain}
