from __future__ import annotations

import json
from typing import Any

import pytest

from meshguard.common.findings import Finding, warning
from meshguard.common.resources import Resource
from meshguard.common.validation import ValidatorRegistry
from meshguard.registry import default_registry
from meshguard.webhook import admission

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "r", "namespace": "shop"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
}


def review(obj: Any = VS, **request: Any) -> bytes:
    body = {
        "uid": "u-1",
        "kind": {"group": "networking.istio.io", "version": "v1", "kind": "VirtualService"},
        "operation": "CREATE",
        "namespace": "shop",
        "object": obj,
        **request,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}
    ).encode()


def answer(body: bytes, registry: ValidatorRegistry | None = None) -> dict[str, Any]:
    request = admission.parse_review(body)
    verdict = admission.decide(request, registry or default_registry())
    return admission.response(request, verdict)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty body"),
        (b"{not json", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"apiVersion": "v1", "kind": "AdmissionReview", "request": {"uid": "a"}}', "apiVersion"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod", "request": {}}', "kind"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "no request"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}', "uid"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_malformed_reviews(body: bytes, fragment: str) -> None:
    with pytest.raises(admission.ReviewError) as caught:
        admission.parse_review(body)
    assert caught.value.status == 400 and fragment in caught.value.reason


def test_allow_echoes_uid_and_version() -> None:
    out = answer(review())
    assert out == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-1", "allowed": True},
    }


def test_deny_lists_every_error_with_its_path() -> None:
    bad = {**VS, "spec": {"hosts": ["reviews"], "http": [
        {"route": [{"destination": {"host": "reviews"}}], "timeout": "0s"},
        {"route": [{"destination": {"host": "*"}}]},
    ]}}  # fmt: skip
    out = answer(review(bad))["response"]
    assert out["allowed"] is False and out["status"]["code"] == 400
    message = out["status"]["message"]
    assert message.startswith("configuration is invalid: 2 errors occurred:")
    assert "spec.http[0].timeout: duration must be at least 1ms, got 0s" in message
    assert "spec.http[1].route[0].destination.host" in message
    assert "warnings" not in out  # dropped on denial, as Istio does


def test_single_error_message() -> None:
    bad = {**VS, "spec": {**VS["spec"], "exportTo": ["*", "."]}}
    message = answer(review(bad))["response"]["status"]["message"]
    assert message.startswith("configuration is invalid: spec.exportTo: ")


def test_warnings_on_allow() -> None:
    warned = {**VS, "spec": {"hosts": ["reviews"], "http": [
        {"route": [{"destination": {"host": "a"}}]}, {"route": [{"destination": {"host": "b"}}]},
    ]}}  # fmt: skip
    out = answer(review(warned))["response"]
    assert out["allowed"] is True
    assert out["warnings"] == [
        "spec.http[1]: rule is unreachable: the earlier rule at spec.http[0] has no match and "
        "takes all traffic"
    ]


def test_dry_run_gets_the_same_verdict() -> None:
    bad = {**VS, "spec": {"hosts": ["reviews"]}}
    assert answer(review(bad, dryRun=True)) == answer(review(bad))


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_allowed(operation: str) -> None:
    out = answer(review({"spec": "garbage"}, operation=operation))
    assert out["response"] == {"uid": "u-1", "allowed": True}


def test_unknown_kind_allowed() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    assert answer(review(pod))["response"]["allowed"] is True


def test_undecodable_object_denied() -> None:
    out = answer(review("a string"))["response"]
    assert out["allowed"] is False and "cannot decode" in out["status"]["message"]
    envelope = answer(review({**VS, "spec": [1, 2]}))["response"]
    assert (
        envelope["allowed"] is False and "spec: must be a mapping" in envelope["status"]["message"]
    )


def test_kind_and_namespace_filled_from_the_request() -> None:
    seen: list[Resource] = []

    def record(resource: Resource) -> list[Finding]:
        seen.append(resource)
        return [warning("spec", "seen")]

    registry = ValidatorRegistry({("networking.istio.io", "VirtualService"): record})
    obj = {"metadata": {"name": "r"}, "spec": {}}
    assert answer(review(obj), registry)["response"]["warnings"] == ["spec: seen"]
    assert (seen[0].api_version, seen[0].metadata.namespace) == ("networking.istio.io/v1", "shop")


def test_a_crashing_validator_denies() -> None:
    def boom(resource: Resource) -> list[Finding]:
        raise RuntimeError("bug")

    registry = ValidatorRegistry({("networking.istio.io", "VirtualService"): boom})
    out = answer(review(), registry)["response"]
    assert out["allowed"] is False and out["status"]["code"] == 500


def test_v1beta1_review_answered_in_v1beta1() -> None:
    body = json.loads(review())
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    assert answer(json.dumps(body).encode())["apiVersion"] == "admission.k8s.io/v1beta1"


def test_encoded_answer_is_compact_json_of_the_response() -> None:
    request = admission.parse_review(review())
    verdict = admission.Verdict(False, "configuration is invalid: spec: ü", 400, ("w",))
    body = admission.encode_response(request, verdict)
    answer = admission.response(request, verdict)
    assert json.loads(body) == answer
    assert body == json.dumps(answer, separators=(",", ":")).encode(), "no spaces, ASCII"
