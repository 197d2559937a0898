"""``meshguard analyze``: offline checks over a whole set of manifests.

Admission sees one object at a time; the mistakes users hit most (a route to a subset no
DestinationRule defines, a VirtualService bound to a Gateway that does not exist) only show up
when resources are looked at together. Each check has a stable ``MG0xxx`` code (the table in
:data:`CODES`, mirrored in examples/webhook/README.md) mapped to the ``istioctl analyze``
message it corresponds to (reference section 5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshguard.common.findings import Finding, Severity
from meshguard.common.resources import Resource
from meshguard.common.validation import ValidatorRegistry
from meshguard.webhook.schema import uncovered_cel_findings


@dataclasses.dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    severity: Severity
    istio: str
    summary: str


_E, _W = Severity.ERROR, Severity.WARNING
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code("MG0001", "SchemaValidationError", _E, "IST0106",
             "the object fails its validator (what the webhook would deny)"),
        Code("MG0002", "SchemaWarning", _W, "IST0133",
             "the validator warns (what the webhook returns as warnings, unknown fields too)"),
        Code("MG0003", "CrdRuleViolation", _E, "IST0106",
             "a CRD CEL rule the API server enforces before any webhook fails"),
        Code("MG0004", "ParseError", _E, "—", "a file or document cannot be read as a resource"),
        Code("MG0101", "SubsetNotFound", _E, "IST0101",
             "a route or mirror names a host+subset that no DestinationRule defines"),
        Code("MG0102", "GatewayNotFound", _E, "IST0101",
             "a VirtualService is bound to a Gateway that does not exist"),
        Code("MG0103", "ConflictingVirtualServiceHosts", _W, "IST0109",
             "several VirtualServices claim the same host on the same gateway (or the mesh)"),
        Code("MG0104", "GatewaySelectorNoWorkload", _E, "IST0101",
             "a Gateway selector matches no workload (checked when workloads are given)"),
        Code("MG0105", "PolicySelectorNoWorkload", _W, "IST0127",
             "an AuthorizationPolicy / PeerAuthentication / RequestAuthentication selector "
             "matches no workload (checked when workloads are given)"),
        Code("MG0106", "ConflictingPeerAuthentication", _E, "—",
             "PeerAuthentications for the same workloads set different mTLS modes"),
        Code("MG0107", "UnknownDestinationRuleHost", _W, "IST0174",
             "a DestinationRule host matches no Service or ServiceEntry (checked when Services "
             "are given)"),
        Code("MG0108", "SubsetSelectsNoWorkload", _W, "IST0173",
             "a subset's labels match none of the host's workloads (would give 503 UH)"),
        Code("MG0109", "UnknownAnnotation", _W, "IST0108",
             "an unknown sidecar.istio.io/* or *meshguard.io/* annotation"),
        Code("MG0110", "MultipleSidecarsWithoutSelector", _W, "IST0111",
             "more than one Sidecar without workloadSelector in a namespace"),
    )
}  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    path: str = ""
    resource: str = ""  # "Kind name.namespace", as istioctl prints it
    file: str | None = None
    doc: int | None = None
    severity: Severity | None = None  # overrides the code's default (MG0002 is always W)

    @property
    def level(self) -> Severity:
        return self.severity or CODES[self.code].severity

    def __str__(self) -> str:
        where = f" ({self.resource})" if self.resource else ""
        path = f" {self.path}:" if self.path else ""
        file = "" if self.resource or self.file is None else f" {self.file}:"
        return f"{self.level.name} [{self.code}]{where}{file}{path} {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": CODES[self.code].name,
            "severity": str(self.level),
            "resource": self.resource,
            "path": self.path,
            "message": self.message,
            "file": self.file,
            "doc": self.doc,
        }


def display_name(resource: Resource) -> str:
    return f"{resource.kind} {resource.metadata.name}.{namespace_of(resource)}"


def namespace_of(resource: Resource) -> str:
    return resource.metadata.namespace or "default"


def diagnostic(resource: Resource, code: str, path: str, message: str) -> Diagnostic:
    origin = resource.origin
    return Diagnostic(
        code,
        message,
        path,
        display_name(resource),
        origin.file if origin else None,
        origin.doc if origin else None,
    )


WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    labels: Mapping[str, str]


class Inventory:
    """The resources under analysis, indexed the ways the analyzers look them up.

    Lookups ("is this subset defined?") see every object in the input. Conflict checks see
    ``latest`` only: like ``kubectl apply`` in order, a later object with the same kind,
    namespace and name replaces the earlier one, so alternative versions of one object (common
    in sample sets) do not conflict with each other.
    """

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources = list(resources)
        latest: dict[tuple[str, str, str, str], Resource] = {}
        unnamed: list[Resource] = []
        for resource in self.resources:
            if resource.metadata.name:
                key = (
                    resource.group,
                    resource.kind,
                    namespace_of(resource),
                    resource.metadata.name,
                )
                latest.pop(key, None)
                latest[key] = resource
            else:
                unnamed.append(resource)
        self.latest = [*latest.values(), *unnamed]
        self.by_kind: dict[str, list[Resource]] = {}
        for resource in self.resources:
            self.by_kind.setdefault(resource.kind, []).append(resource)
        self.workloads = [w for r in self.resources for w in _workload(r)]

    def of(self, *kinds: str) -> list[Resource]:
        return [r for kind in kinds for r in self.by_kind.get(kind, [])]

    def istio(self, kind: str) -> list[Resource]:
        return [r for r in self.of(kind) if r.group.endswith("istio.io")]

    def latest_istio(self, kind: str) -> list[Resource]:
        return [r for r in self.latest if r.kind == kind and r.group.endswith("istio.io")]

    def selects_any(self, labels: Mapping[str, str], namespace: str | None) -> bool:
        return any(
            (namespace is None or w.namespace == namespace)
            and all(w.labels.get(k) == v for k, v in labels.items())
            for w in self.workloads
        )


def _workload(resource: Resource) -> Iterator[Workload]:
    namespace = namespace_of(resource)
    if resource.kind == "Pod" and resource.group == "":
        yield Workload(namespace, resource.metadata.labels)
    elif resource.kind in WORKLOAD_KINDS:
        template = resource.spec.get("template")
        meta = template.get("metadata") if isinstance(template, Mapping) else None
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        if isinstance(labels, Mapping):
            yield Workload(namespace, {str(k): str(v) for k, v in labels.items()})


def object_diagnostics(
    resources: Iterable[Resource], registry: ValidatorRegistry
) -> Iterator[Diagnostic]:
    """MG0001 / MG0002 / MG0003: each known object's own findings."""
    for resource in resources:
        if not registry.knows(resource):
            continue
        findings = registry.validate(resource)
        for finding in findings:
            yield diagnostic(resource, "MG0001" if finding.is_error else "MG0002",
                             finding.path, finding.message)  # fmt: skip
        for finding in uncovered_cel_findings(resource, findings):
            yield diagnostic(resource, "MG0003", finding.path, finding.message)


def parse_diagnostics(findings: Iterable[Finding]) -> Iterator[Diagnostic]:
    for finding in findings:
        yield Diagnostic("MG0004", finding.message, finding.path, "", finding.file, finding.doc)
