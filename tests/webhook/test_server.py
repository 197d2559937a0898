"""The lean server's responder: routes, methods, content types and /mutate (the HTTPS edge and
/validate's verdicts are in tests/integration/test_webhook_server.py)."""

from __future__ import annotations

import json

from meshguard.common.leanhttp import Request
from meshguard.registry import default_registry
from meshguard.webhook.decisions import DecisionLog
from meshguard.webhook.server import Reviews, WebhookHttp

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"containers": [{"name": "app", "image": "app"}]}}  # fmt: skip
HTTP = WebhookHttp(Reviews(default_registry(), 1024 * 1024, DecisionLog()))


def call(target: str, body: bytes = b"", *, method: str = "POST",
         content_type: bytes = b"application/json") -> tuple[int, bytes, bytes]:  # fmt: skip
    headers = [(b"Host", b"h"), (b"Content-Type", content_type)]
    answer = HTTP.respond(Request(method, target, headers, body, True))
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, payload


def review(obj: object) -> bytes:
    request = {"uid": "u1", "operation": "CREATE", "namespace": "shop", "object": obj,
               "kind": {"group": "", "version": "v1", "kind": "Pod"}}  # fmt: skip
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": request}).encode()  # fmt: skip


def test_validate_accepts_a_charset_parameter_and_a_query() -> None:
    status, _, body = call("/validate?timeout=10s", review(POD),
                           content_type=b"application/json; charset=utf-8")  # fmt: skip
    assert status == 200 and json.loads(body)["response"] == {"uid": "u1", "allowed": True}


def test_mutate_answers_with_the_injector() -> None:
    status, _, body = call("/mutate", review(POD))
    assert status == 200 and json.loads(body)["response"]["uid"] == "u1"


def test_refusals_name_the_reason() -> None:
    assert call("/other", b"{}")[0] == 404
    assert call("/validate", method="GET")[0] == 405
    assert call("/mutate", b"{}", content_type=b"text/plain")[0] == 415
    status, _, body = call("/mutate", b"{nope")
    assert status == 400 and json.loads(body) == {"error": "body is not JSON"}


def test_head_announces_the_refusal_without_its_body() -> None:
    status, head, body = call("/validate", method="HEAD")
    assert status == 405 and b"content-length: " in head and body == b""


def test_a_body_over_the_limit_is_refused_with_the_limit() -> None:
    refusal = HTTP.refusal(413, "request body too large")
    assert b"413 Content Too Large" in refusal and b"connection: close" in refusal
    assert b"1048576-byte limit" in refusal
