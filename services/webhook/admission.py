"""AdmissionReview v1 in, AdmissionReview out: the validating webhook's pure core.

Parsing the review is the edge: a body that is not a usable review raises :class:`ReviewError`
(an HTTP error, not an admission answer, as the API server expects). Everything after that is
a verdict: the object's findings from the shared validator registry, rendered the way kubectl
shows them (``configuration is invalid: spec.http[0].timeout: ...``), warnings one per string.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

from meshguard.common.findings import Finding, FindingsError, Severity
from meshguard.common.resources import from_dict
from meshguard.common.validation import ValidatorRegistry
from meshguard.webhook.schema import is_unknown_field

log = logging.getLogger(__name__)

REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
REVIEW_KIND = "AdmissionReview"
CHECKED_OPERATIONS = ("CREATE", "UPDATE")
DENIED_CODE = 400
INTERNAL_CODE = 500


class ReviewError(Exception):
    """A request that is not an AdmissionReview we can answer; ``status`` is the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class AdmissionRequest:
    api_version: str
    uid: str
    group: str
    version: str
    kind: str
    operation: str
    namespace: str
    dry_run: bool
    object: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    message: str = ""
    code: int = 0
    warnings: tuple[str, ...] = ()


def parse_review(body: bytes) -> AdmissionRequest:
    """Decode and check the envelope; raises ReviewError(400) naming what is wrong."""
    if not body:
        raise ReviewError(400, "empty body: expected an AdmissionReview")
    try:
        review = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ReviewError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(review, Mapping):
        raise ReviewError(400, "body must be a JSON object (an AdmissionReview)")
    api_version, kind = review.get("apiVersion"), review.get("kind")
    if api_version not in REVIEW_VERSIONS:
        raise ReviewError(400, f"unsupported apiVersion {api_version!r}: expected one of "
                          f"{', '.join(REVIEW_VERSIONS)}")  # fmt: skip
    if kind != REVIEW_KIND:
        raise ReviewError(400, f"unsupported kind {kind!r}: expected {REVIEW_KIND}")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise ReviewError(400, "the review has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(400, "request.uid must be a non-empty string")
    gvk = request.get("kind")
    gvk = gvk if isinstance(gvk, Mapping) else {}
    return AdmissionRequest(
        api_version=str(api_version),
        uid=uid,
        group=_text(gvk.get("group")),
        version=_text(gvk.get("version")),
        kind=_text(gvk.get("kind")),
        operation=_text(request.get("operation")).upper(),
        namespace=_text(request.get("namespace")),
        dry_run=request.get("dryRun") is True,
        object=request.get("object"),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def decide(
    request: AdmissionRequest, registry: ValidatorRegistry, *, reject_unknown_fields: bool = True
) -> Verdict:
    """The verdict for one request; never raises (an internal failure denies: fail closed).

    Unknown fields deny by default: users asked for typo detection at ``kubectl apply``, and
    that is what strict field validation in the API server does too. Without it they are
    warnings, Istio's own lenient decoding."""
    if request.operation not in CHECKED_OPERATIONS:
        return Verdict(allowed=True)
    obj = request.object
    if not isinstance(obj, Mapping):
        return Verdict(False, "cannot decode configuration: request.object must be an object",
                       DENIED_CODE)  # fmt: skip
    try:
        resource = from_dict(_completed(obj, request))
    except FindingsError as exc:
        return _render(list(exc.findings))
    if not registry.knows(resource):
        return Verdict(allowed=True)
    try:
        findings = registry.validate(resource)
    except Exception:  # a validator bug must not take the webhook down or admit blindly
        log.exception("validator failed", extra={"kind": resource.kind, "uid": request.uid})
        return Verdict(False, f"internal error validating {resource.kind}; see webhook logs",
                       INTERNAL_CODE)  # fmt: skip
    if reject_unknown_fields:
        findings = [
            dataclasses.replace(f, severity=Severity.ERROR) if is_unknown_field(f) else f
            for f in findings
        ]
    return _render(findings)


def _completed(obj: Mapping[str, Any], request: AdmissionRequest) -> dict[str, Any]:
    """The object with apiVersion/kind/namespace filled in from the request where missing."""
    completed = dict(obj)
    if not completed.get("apiVersion") and request.version:
        group = f"{request.group}/" if request.group else ""
        completed["apiVersion"] = f"{group}{request.version}"
    if not completed.get("kind") and request.kind:
        completed["kind"] = request.kind
    metadata = completed.get("metadata")
    if isinstance(metadata, Mapping) and not metadata.get("namespace") and request.namespace:
        completed["metadata"] = {**metadata, "namespace": request.namespace}
    return completed


def _render(findings: list[Finding]) -> Verdict:
    errors = [f for f in findings if f.is_error]
    if errors:  # like Istio, warnings are dropped when the object is refused
        lines = [_line(f) for f in errors]
        if len(lines) == 1:
            message = f"configuration is invalid: {lines[0]}"
        else:
            bullets = "".join(f"\n\t* {line}" for line in lines)
            message = f"configuration is invalid: {len(lines)} errors occurred:{bullets}"
        return Verdict(False, message, DENIED_CODE)
    return Verdict(True, warnings=tuple(_line(f) for f in findings))


def _line(finding: Finding) -> str:
    return f"{finding.path}: {finding.message}" if finding.path else finding.message


def response(request: AdmissionRequest, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answer, in the request's apiVersion, echoing its uid."""
    body: dict[str, Any] = {"uid": request.uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        body["status"] = {"code": verdict.code, "message": verdict.message}
    if verdict.warnings:
        body["warnings"] = list(verdict.warnings)
    return {"apiVersion": request.api_version, "kind": REVIEW_KIND, "response": body}


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # one encoder, no spaces on the wire


def encode_response(request: AdmissionRequest, verdict: Verdict) -> bytes:
    """The answer as the bytes sent on the wire (compact JSON, ASCII)."""
    return _COMPACT.encode(response(request, verdict)).encode()
