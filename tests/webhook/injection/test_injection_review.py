"""``/mutate`` answers: dry-run parity, skips, refusals, non-pod input, the HTTP edge."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from meshguard.cli import build_parser
from meshguard.common.leanhttp import Request
from meshguard.registry import default_registry
from meshguard.webhook.decisions import DecisionLog
from meshguard.webhook.injection import settings
from meshguard.webhook.injection.review import mutate_review
from meshguard.webhook.server import Reviews, WebhookHttp

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "web-", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "w", "ports": [{"containerPort": 8080}]}]},
}


def _review(pod: dict[str, Any], **request: Any) -> dict[str, Any]:
    base = {"uid": "abc", "operation": "CREATE", "namespace": "shop", "object": pod}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {**base, **request},
    }


def test_dry_run_gets_the_same_patch() -> None:
    real = mutate_review(_review(copy.deepcopy(POD)))
    dry = mutate_review(_review(copy.deepcopy(POD), dryRun=True))
    assert real == dry
    assert real["response"]["patchType"] == "JSONPatch"
    assert real["apiVersion"] == "admission.k8s.io/v1" and real["kind"] == "AdmissionReview"


@pytest.mark.parametrize(
    "change",
    [
        {"spec": {**POD["spec"], "hostNetwork": True}},
        {"metadata": {"labels": {"sidecar.istio.io/inject": "true"}}},
        {"metadata": {"annotations": {"sidecar.meshguard.io/inject": "false"}}},
        {"metadata": {"annotations": {"sidecar.istio.io/status": "{}"}}},
    ],
    ids=["hostNetwork", "istio-label", "opt-out-annotation", "istio-injected"],
)
def test_skips_are_allowed_without_patch(change: dict[str, Any]) -> None:
    response = mutate_review(_review({**POD, **change}))["response"]
    assert response == {"uid": "abc", "allowed": True}


def test_already_injected_pod_is_left_alone() -> None:
    first = mutate_review(_review(copy.deepcopy(POD)))["response"]
    import jsonpatch

    injected = jsonpatch.apply_patch(POD, json.loads(base64.b64decode(first["patch"])))
    assert "patch" not in mutate_review(_review(injected))["response"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sidecar.meshguard.io/proxyCPU", "lots"),
        ("traffic.sidecar.meshguard.io/excludeOutboundIPRanges", "10.0.0.0/8,not-a-cidr"),
        ("traffic.sidecar.meshguard.io/includeOutboundIPRanges", "*,10.0.0.0/8"),
        ("traffic.sidecar.meshguard.io/includeOutboundIPRanges", "10.0.0.0/33"),
    ],
)
def test_invalid_annotation_is_refused_with_its_name(name: str, value: str) -> None:
    pod = {**POD, "metadata": {"annotations": {name: value}}}
    response = mutate_review(_review(pod))["response"]
    assert response["allowed"] is False
    assert name in response["status"]["message"]


def test_excluded_outbound_ranges_reach_the_init_container() -> None:
    annotation = "traffic.sidecar.meshguard.io/excludeOutboundIPRanges"
    pod = {**POD, "metadata": {"annotations": {annotation: "10.96.0.5/12, 192.168.1.1/32"}}}
    patch = json.loads(base64.b64decode(mutate_review(_review(pod))["response"]["patch"]))
    text = json.dumps(patch)
    assert "-d 10.96.0.0/12 -j RETURN" in text and "-d 192.168.1.1/32 -j RETURN" in text


@pytest.mark.parametrize(
    ("value", "redirects"),
    [
        ("10.0.0.1/8, 172.16.0.0/12", ["-d 10.0.0.0/8 -j MESHGUARD_REDIRECT",
                                       "-d 172.16.0.0/12 -j MESHGUARD_REDIRECT"]),
        ("*", ["-A MESHGUARD_OUTPUT -j MESHGUARD_REDIRECT"]),
        ("", []),
    ],
)  # fmt: skip
def test_included_outbound_ranges_reach_the_init_container(
    value: str, redirects: list[str]
) -> None:
    annotation = "traffic.sidecar.meshguard.io/includeOutboundIPRanges"
    pod = {**POD, "metadata": {"annotations": {annotation: value}}}
    patch = json.loads(base64.b64decode(mutate_review(_review(pod))["response"]["patch"]))
    init = next(
        c
        for op in patch
        if op["path"] == "/spec/initContainers"
        for c in op["value"]
        if c["name"] == "meshguard-init"
    )
    lines = init["command"][2].splitlines()
    assert [line for line in lines if line.endswith("MESHGUARD_REDIRECT") and "OUTPUT" in line] == [
        f"iptables -t nat -A MESHGUARD_OUTPUT {r.removeprefix('-A MESHGUARD_OUTPUT ')}"
        for r in redirects
    ]


def test_operations_other_than_create_and_missing_objects_pass() -> None:
    assert mutate_review(_review(POD, operation="UPDATE"))["response"]["allowed"] is True
    assert "patch" not in mutate_review(_review(POD, operation="UPDATE"))["response"]
    assert mutate_review(_review("not a pod"))["response"] == {"uid": "abc", "allowed": True}  # type: ignore[arg-type]


def mutate_http(http: WebhookHttp, body: bytes, content_type: str = "application/json") -> Any:
    """POST /mutate through the webhook server's own responder: (status, parsed body)."""
    raw = [(b"Content-Type", content_type.encode())]
    answer = http.respond(Request("POST", "/mutate", raw, body, keep_alive=False))
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_http_edge() -> None:
    http = WebhookHttp(Reviews(default_registry(), 64 * 1024, DecisionLog()))
    status, answer = mutate_http(http, json.dumps(_review(POD)).encode())
    assert status == 200 and answer["response"]["patchType"] == "JSONPatch"
    assert mutate_http(http, b"x", "text/plain")[0] == 415
    assert mutate_http(http, b"")[0] == 400
    assert mutate_http(http, b"{nope")[0] == 400
    assert mutate_http(http, b"[1]")[0] == 400


def test_webhook_serve_flags_reach_mutate() -> None:
    """``meshguard webhook serve --inject-*`` builds the /mutate route from those settings."""
    flags = "--inject-mtls-mode PERMISSIVE --inject-proxy-image registry.local/proxy:9"
    args = build_parser().parse_args(["webhook", "serve", *flags.split()])
    http = WebhookHttp(
        Reviews(default_registry(), 64 * 1024, DecisionLog()), settings.from_args(args)
    )
    _, answer = mutate_http(http, json.dumps(_review(copy.deepcopy(POD))).encode())
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    text = json.dumps(patch)
    assert "registry.local/proxy:9" in text and "inbound-plain-8080" in text
