"""Typed AuthorizationPolicy and RequestAuthentication objects, parsed from a Resource.

Parsing is lenient on purpose: it keeps what Istio's translation would keep (a ``null`` rule is
skipped, a non-list value becomes empty) so the engine can reproduce istiod's behaviour on specs
that slipped past validation. Validation (``validation.py``) is what rejects them up front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from meshguard.common.resources import Origin, Resource

GROUPS = ("security.istio.io", "meshguard.io")
VERSIONS = {"security.istio.io": ("v1", "v1beta1"), "meshguard.io": ("v1alpha1",)}
AUTHORIZATION_POLICY = "AuthorizationPolicy"
REQUEST_AUTHENTICATION = "RequestAuthentication"
DRY_RUN_ANNOTATION = "istio.io/dry-run"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"

ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")

# Go strconv.ParseBool, which istiod uses for the dry-run annotation.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(text: str) -> bool | None:
    """True/False as Go's strconv.ParseBool reads ``text``; None when it does not parse."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One Source/Operation field: its YAML names and whether only HTTP requests carry it."""

    attr: str
    key: str
    not_key: str
    http_only: bool


SOURCE_FIELDS = (
    FieldSpec("principals", "principals", "notPrincipals", False),
    FieldSpec("request_principals", "requestPrincipals", "notRequestPrincipals", True),
    FieldSpec("namespaces", "namespaces", "notNamespaces", False),
    FieldSpec("service_accounts", "serviceAccounts", "notServiceAccounts", False),
    FieldSpec("trust_domains", "trustDomains", "notTrustDomains", False),
    FieldSpec("ip_blocks", "ipBlocks", "notIpBlocks", False),
    FieldSpec("remote_ip_blocks", "remoteIpBlocks", "notRemoteIpBlocks", False),
)
OPERATION_FIELDS = (
    FieldSpec("hosts", "hosts", "notHosts", True),
    FieldSpec("ports", "ports", "notPorts", False),
    FieldSpec("methods", "methods", "notMethods", True),
    FieldSpec("paths", "paths", "notPaths", True),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Values:
    """A field's positive values (ORed) and negative values (NORed); empty = not set."""

    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()

    @property
    def is_set(self) -> bool:
        return bool(self.values or self.not_values)


NO_VALUES = Values()


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    principals: Values = NO_VALUES
    request_principals: Values = NO_VALUES
    namespaces: Values = NO_VALUES
    service_accounts: Values = NO_VALUES
    trust_domains: Values = NO_VALUES
    ip_blocks: Values = NO_VALUES
    remote_ip_blocks: Values = NO_VALUES


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    hosts: Values = NO_VALUES
    ports: Values = NO_VALUES
    methods: Values = NO_VALUES
    paths: Values = NO_VALUES


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    key: str
    values: Values


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """``sources``/``operations`` empty means the rule places no constraint there."""

    sources: tuple[Source, ...] = ()
    operations: tuple[Operation, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class TargetRef:
    group: str
    kind: str
    name: str
    namespace: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """Selector / targetRefs of a policy; ``selector`` None means no selector at all."""

    selector: Mapping[str, str] | None
    target_refs: tuple[TargetRef, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    name: str
    namespace: str
    action: str
    provider: str
    attachment: Attachment
    rules: tuple[Rule, ...]
    dry_run: bool
    origin: Origin | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class HeaderLocation:
    name: str
    prefix: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimToHeader:
    header: str
    claim: str


DEFAULT_TIMEOUT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class JWTRule:
    issuer: str
    audiences: tuple[str, ...] = ()
    jwks_uri: str = ""
    jwks: str = ""
    from_headers: tuple[HeaderLocation, ...] = ()
    from_params: tuple[str, ...] = ()
    from_cookies: tuple[str, ...] = ()
    output_payload_to_header: str = ""
    forward_original_token: bool = False
    output_claim_to_headers: tuple[ClaimToHeader, ...] = ()
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    space_delimited_claims: tuple[str, ...] = ()

    @property
    def uses_default_locations(self) -> bool:
        return not (self.from_headers or self.from_params or self.from_cookies)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestAuthentication:
    name: str
    namespace: str
    attachment: Attachment
    jwt_rules: tuple[JWTRule, ...]
    origin: Origin | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def is_security_kind(resource: Resource, kind: str) -> bool:
    return resource.kind == kind and resource.group in GROUPS


# ---------------------------------------------------------------------------------------------
# Lenient readers of raw spec values.


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(value) if v is not None)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _values(raw: Mapping[str, Any], spec: FieldSpec) -> Values:
    return Values(_strings(raw.get(spec.key)), _strings(raw.get(spec.not_key)))


def _fields(raw: Mapping[str, Any], specs: Sequence[FieldSpec]) -> dict[str, Values]:
    return {spec.attr: _values(raw, spec) for spec in specs}


def parse_attachment(spec: Mapping[str, Any]) -> Attachment:
    selector: Mapping[str, str] | None = None
    if "selector" in spec and spec["selector"] is not None:
        labels = _mapping(_mapping(spec["selector"]).get("matchLabels"))
        selector = MappingProxyType({str(k): str(v) for k, v in labels.items()})
    refs = [_mapping(r) for r in _list(spec.get("targetRefs"))]
    if isinstance(spec.get("targetRef"), Mapping):
        refs.insert(0, spec["targetRef"])
    target_refs = tuple(
        TargetRef(
            _text(r.get("group")),
            _text(r.get("kind")),
            _text(r.get("name")),
            _text(r.get("namespace")),
        )
        for r in refs
    )
    return Attachment(selector, target_refs)


def _parse_rule(raw: Mapping[str, Any]) -> Rule:
    sources = tuple(
        Source(**_fields(_mapping(entry).get("source") or {}, SOURCE_FIELDS))
        for entry in _list(raw.get("from"))
    )
    operations = tuple(
        Operation(**_fields(_mapping(entry).get("operation") or {}, OPERATION_FIELDS))
        for entry in _list(raw.get("to"))
    )
    conditions = tuple(
        Condition(
            _text(_mapping(c).get("key")),
            Values(_strings(_mapping(c).get("values")), _strings(_mapping(c).get("notValues"))),
        )
        for c in _list(raw.get("when"))
    )
    return Rule(sources, operations, conditions)


def parse_authorization_policy(resource: Resource) -> AuthorizationPolicy:
    spec = resource.spec
    action = _text(spec.get("action")) or "ALLOW"
    dry_run = parse_go_bool(resource.metadata.annotations.get(DRY_RUN_ANNOTATION, "")) is True
    return AuthorizationPolicy(
        name=resource.metadata.name,
        namespace=resource.metadata.namespace,
        action=action,
        provider=_text(_mapping(spec.get("provider")).get("name")),
        attachment=parse_attachment(spec),
        # Istio skips null rules; they are a validation error, never a constraint.
        rules=tuple(_parse_rule(r) for r in _list(spec.get("rules")) if isinstance(r, Mapping)),
        dry_run=dry_run,
        origin=resource.origin,
    )


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration string (``5s``, ``1m30s``, ``500ms``); None if malformed."""
    units = {
        "ns": 1e-9,
        "us": 1e-6,
        "µs": 1e-6,
        "μs": 1e-6,
        "ms": 1e-3,
        "s": 1.0,
        "m": 60.0,
        "h": 3600.0,
    }
    body = text.strip()
    if not body:
        return None
    sign = 1.0
    if body[0] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    total = 0.0
    index = 0
    if not body:
        return None
    while index < len(body):
        start = index
        while index < len(body) and (body[index].isdigit() or body[index] == "."):
            index += 1
        number = body[start:index]
        unit_start = index
        while index < len(body) and not (body[index].isdigit() or body[index] == "."):
            index += 1
        unit = body[unit_start:index]
        if not number or number == "." or unit not in units or number.count(".") > 1:
            return None
        total += float(number) * units[unit]
    return sign * total


def _jwt_rule(raw: Mapping[str, Any]) -> JWTRule:
    timeout = parse_duration(_text(raw.get("timeout"))) if raw.get("timeout") else None
    return JWTRule(
        issuer=_text(raw.get("issuer")),
        audiences=_strings(raw.get("audiences")),
        jwks_uri=_text(raw.get("jwksUri")) or _text(raw.get("jwks_uri")),
        jwks=_text(raw.get("jwks")),
        from_headers=tuple(
            HeaderLocation(_text(_mapping(h).get("name")), _text(_mapping(h).get("prefix")))
            for h in _list(raw.get("fromHeaders"))
        ),
        from_params=_strings(raw.get("fromParams")),
        from_cookies=_strings(raw.get("fromCookies")),
        output_payload_to_header=_text(raw.get("outputPayloadToHeader")),
        forward_original_token=raw.get("forwardOriginalToken") is True,
        output_claim_to_headers=tuple(
            ClaimToHeader(_text(_mapping(c).get("header")), _text(_mapping(c).get("claim")))
            for c in _list(raw.get("outputClaimToHeaders"))
        ),
        timeout_seconds=timeout if timeout and timeout > 0 else DEFAULT_TIMEOUT_SECONDS,
        space_delimited_claims=_strings(raw.get("spaceDelimitedClaims")),
    )


def parse_request_authentication(resource: Resource) -> RequestAuthentication:
    spec = resource.spec
    return RequestAuthentication(
        name=resource.metadata.name,
        namespace=resource.metadata.namespace,
        attachment=parse_attachment(spec),
        jwt_rules=tuple(
            _jwt_rule(r) for r in _list(spec.get("jwtRules")) if isinstance(r, Mapping)
        ),
        origin=resource.origin,
    )
