"""Validators for AuthorizationPolicy and RequestAuthentication (Istio's webhook + CRD rules).

One function per kind returning findings with Istio-style field paths. The webhook, the authz
loader and ``meshguard validate`` all call these through the common registry.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, TypeGuard

from meshguard.authz import conditions, pathtemplate
from meshguard.authz.model import (
    ACTIONS,
    AUTHORIZATION_POLICY,
    DRY_RUN_ANNOTATION,
    OPERATION_FIELDS,
    REQUEST_AUTHENTICATION,
    SOURCE_FIELDS,
    VERSIONS,
    parse_duration,
    parse_go_bool,
)
from meshguard.common.findings import Finding, error, field, item, warning
from meshguard.common.resources import Resource
from meshguard.common.validation import KindKey, Validator
from meshguard.webhook.metadata import metadata_findings

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HEADER_NAME = re.compile(r"[-_A-Za-z0-9]+")
_SERVICE_ACCOUNT = re.compile(r"[^/*]+(/[^/*]+)?")
_TARGET_KINDS = {
    "Service": ("",),
    "ServiceEntry": ("networking.istio.io",),
    "Gateway": ("gateway.networking.k8s.io",),
    "GatewayClass": ("gateway.networking.k8s.io",),
}
_AP_SPEC_KEYS = frozenset({"selector", "targetRef", "targetRefs", "rules", "action", "provider"})
_RA_SPEC_KEYS = frozenset({"selector", "targetRef", "targetRefs", "jwtRules"})
_RULE_KEYS = frozenset({"from", "to", "when"})
_SOURCE_KEYS = frozenset(k for f in SOURCE_FIELDS for k in (f.key, f.not_key))
_OPERATION_KEYS = frozenset(k for f in OPERATION_FIELDS for k in (f.key, f.not_key))
_CONDITION_KEYS = frozenset({"key", "values", "notValues"})
_JWT_RULE_KEYS = frozenset(
    {
        "issuer",
        "audiences",
        "jwksUri",
        "jwks_uri",
        "jwks",
        "fromHeaders",
        "fromParams",
        "fromCookies",
        "outputPayloadToHeader",
        "forwardOriginalToken",
        "outputClaimToHeaders",
        "timeout",
        "spaceDelimitedClaims",
        "presence",
    }
)
# Fields a CUSTOM rule may not use: ext_authz is triggered before identity is established.
_CUSTOM_FORBIDDEN_SOURCE = frozenset(
    {
        "principals",
        "notPrincipals",
        "requestPrincipals",
        "notRequestPrincipals",
        "namespaces",
        "notNamespaces",
        "serviceAccounts",
        "notServiceAccounts",
        "trustDomains",
        "notTrustDomains",
    }
)
_IP_FIELDS = frozenset({"ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"})
_HTTP_SOURCE_KEYS = frozenset({"requestPrincipals", "notRequestPrincipals"})
_HTTP_OPERATION_KEYS = frozenset(
    k for f in OPERATION_FIELDS if f.http_only for k in (f.key, f.not_key)
)
# The order a source's / an operation's fields are reported in (sources as the model declares
# them, operations alphabetically); only the fields present are visited.
_SOURCE_RANK = {k: n for n, k in enumerate(k for f in SOURCE_FIELDS for k in (f.key, f.not_key))}
_OPERATION_RANK = {k: n for n, k in enumerate(sorted(_OPERATION_KEYS))}
_ENTRY_KEYS = {"source": frozenset({"source"}), "operation": frozenset({"operation"})}
_NEVER_MAPS = (str, int, float, list, type(None))
_cached = functools.lru_cache(maxsize=4096)  # pure checks of one string, bounded


def _is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Decoded JSON is dicts and scalars: tested before the slow ``Mapping`` ABC check."""
    if type(value) is dict:
        return True
    return not isinstance(value, _NEVER_MAPS) and isinstance(value, Mapping)


@_cached
def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


@_cached
def _path_problems(value: str) -> tuple[str, ...]:
    return tuple(pathtemplate.problems(value))


@_cached
def _parse_key(key: str) -> conditions.ConditionKey:
    """``conditions.parse_key`` once per distinct key (a rejected key raises every time)."""
    return conditions.parse_key(key)


def _check_version(resource: Resource, out: list[Finding]) -> None:
    allowed = VERSIONS.get(resource.group, ())
    if resource.version not in allowed:
        out.append(
            error(
                "apiVersion",
                f"{resource.api_version} is not served; use one of "
                + ", ".join(f"{resource.group}/{v}" for v in allowed),
            )
        )


def _unknown(raw: Mapping[str, Any], known: frozenset[str], path: str, out: list[Finding]) -> None:
    for key in raw:
        if key not in known:
            out.append(error(field(path, str(key)), f"unknown field {key!r}"))


def _string_list(
    raw: Mapping[str, Any], key: str, path: str, out: list[Finding]
) -> list[str] | None:
    """The list of strings under ``key`` (None when absent); reports nulls, non-strings, ''."""
    if key not in raw:
        return None
    value = raw[key]
    if value is None:
        return []
    if type(value) is list and all(type(entry) is str and entry for entry in value):
        return value  # the common case: no path to build, no copy (callers only read it)
    where = field(path, key)
    if not isinstance(value, list):
        out.append(error(where, "must be a list of strings"))
        return []
    strings: list[str] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, str):
            out.append(error(item(where, index), "must be a string"))
        elif entry == "":
            out.append(error(item(where, index), f"empty string value in {key}"))
        else:
            strings.append(entry)
    return strings


def _validate_labels(labels: Mapping[Any, Any], path: str, out: list[Finding]) -> None:
    for key, value in labels.items():
        where = item(path, key)
        if not isinstance(key, str) or key == "":
            out.append(error(where, "label key must be a non-empty string"))
            continue
        if "*" in key or (isinstance(value, str) and "*" in value):
            out.append(error(where, "wildcard '*' is not allowed in selector labels"))
            continue
        prefix, _, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))) or not (
            _LABEL_NAME.fullmatch(name)
        ):
            out.append(error(where, f"invalid label key {key!r}"))
        if not isinstance(value, str):
            out.append(error(where, "label value must be a string"))
        elif value and not _LABEL_NAME.fullmatch(value):
            out.append(error(where, f"invalid label value {value!r}"))


def _validate_attachment(spec: Mapping[str, Any], out: list[Finding]) -> None:
    present = [k for k in ("selector", "targetRef", "targetRefs") if k in spec]
    if len(present) > 1:
        out.append(error("spec", "only one of selector, targetRef, targetRefs may be set"))
    if "selector" in spec:
        selector = spec["selector"]
        if selector is not None and not isinstance(selector, Mapping):
            out.append(error("spec.selector", "must be a mapping"))
        else:
            labels = (selector or {}).get("matchLabels")
            if labels is not None and not isinstance(labels, Mapping):
                out.append(error("spec.selector.matchLabels", "must be a mapping"))
            elif not labels:
                out.append(
                    warning(
                        "spec.selector",
                        "selector without labels applies to every "
                        "workload in the namespace; remove it or add matchLabels",
                    )
                )
            else:
                _validate_labels(labels, "spec.selector.matchLabels", out)
    refs: list[tuple[str, Any]] = []
    if "targetRef" in spec:
        refs.append(("spec.targetRef", spec["targetRef"]))
    if "targetRefs" in spec:
        raw_refs = spec["targetRefs"]
        if not isinstance(raw_refs, list):
            out.append(error("spec.targetRefs", "must be a list"))
        else:
            if len(raw_refs) > 16:
                out.append(error("spec.targetRefs", "at most 16 targetRefs are allowed"))
            refs.extend((item("spec.targetRefs", i), r) for i, r in enumerate(raw_refs))
    for path, ref in refs:
        _validate_target_ref(ref, path, out)


def _validate_target_ref(ref: object, path: str, out: list[Finding]) -> None:
    if not isinstance(ref, Mapping):
        out.append(error(path, "must be a mapping"))
        return
    kind, group = ref.get("kind", ""), ref.get("group", "") or ""
    if not ref.get("name"):
        out.append(error(field(path, "name"), "name is required"))
    if ref.get("namespace"):
        out.append(error(field(path, "namespace"), "cross-namespace targetRef is not allowed"))
    groups = _TARGET_KINDS.get(str(kind))
    if groups is None:
        out.append(
            error(
                field(path, "kind"),
                f"targetRef kind {kind!r} is not supported; use "
                "Service, ServiceEntry, Gateway or GatewayClass",
            )
        )
    elif group not in groups:
        out.append(error(field(path, "group"), f"group of {kind} must be {groups[0]!r}"))


# ---------------------------------------------------------------------------------------------
# AuthorizationPolicy


def _ip_values(values: list[str], path: str, out: list[Finding]) -> None:
    for index, value in enumerate(values):
        if not _is_network(value):
            out.append(error(item(path, index), f"{value!r} is not a valid IP address or CIDR"))


def _port_values(values: list[str], path: str, out: list[Finding]) -> None:
    for index, value in enumerate(values):
        if not value.isdigit() or not value.isascii() or int(value) > 65535:
            out.append(error(item(path, index), f"port {value!r} must be an integer 0..65535"))


def _service_accounts(values: list[str], path: str, out: list[Finding]) -> None:
    if len(values) > 16:
        out.append(error(path, "at most 16 service accounts are allowed"))
    for index, value in enumerate(values):
        if len(value) > 320 or not _SERVICE_ACCOUNT.fullmatch(value):
            out.append(
                error(
                    item(path, index),
                    f"service account {value!r} must be 'name' or "
                    "'namespace/name' without wildcards",
                )
            )


def _trust_domains(values: list[str], path: str, out: list[Finding]) -> None:
    for index, value in enumerate(values):
        stars = value.count("*")
        if (
            "/" in value
            or stars > 1
            or (stars == 1 and not (value.startswith("*") or value.endswith("*")))
        ):
            out.append(
                error(
                    item(path, index),
                    f"trust domain {value!r}: at most one '*', at the start or end, and no '/'",
                )
            )


def _validate_source(raw: object, path: str, action: str, out: list[Finding]) -> None:
    if not _is_map(raw) or not raw:
        out.append(error(path, "from.source must be set and not empty"))
        return
    _unknown(raw, _SOURCE_KEYS, path, out)
    present = sorted((k for k in raw if k in _SOURCE_RANK), key=_SOURCE_RANK.__getitem__)
    lists = {k: _string_list(raw, k, path, out) or [] for k in present}
    if ("serviceAccounts" in lists or "notServiceAccounts" in lists) and any(
        k in lists for k in ("principals", "notPrincipals", "namespaces", "notNamespaces")
    ):
        out.append(
            error(
                path,
                "serviceAccounts/notServiceAccounts cannot be combined with principals "
                "or namespaces",
            )
        )
    for key, values in lists.items():
        where = field(path, key)
        if key in _IP_FIELDS:
            _ip_values(values, where, out)
        elif key in ("serviceAccounts", "notServiceAccounts"):
            _service_accounts(values, where, out)
        elif key in ("trustDomains", "notTrustDomains"):
            _trust_domains(values, where, out)
        if action == "CUSTOM" and key in _CUSTOM_FORBIDDEN_SOURCE:
            out.append(error(where, f"from.source.{key} is not supported with CUSTOM action"))


def _validate_operation(raw: object, path: str, out: list[Finding]) -> None:
    if not _is_map(raw) or not raw:
        out.append(error(path, "to.operation must be set and not empty"))
        return
    _unknown(raw, _OPERATION_KEYS, path, out)
    for key in sorted((k for k in raw if k in _OPERATION_RANK), key=_OPERATION_RANK.__getitem__):
        values = _string_list(raw, key, path, out)
        if values is None:
            continue
        where = field(path, key)
        if key in ("ports", "notPorts"):
            _port_values(values, where, out)
        elif key in ("paths", "notPaths"):
            for index, value in enumerate(values):
                out.extend(error(item(where, index), p) for p in _path_problems(value))


def _validate_condition(raw: object, path: str, action: str, out: list[Finding]) -> None:
    if not _is_map(raw):
        out.append(error(path, "condition must be a mapping"))
        return
    _unknown(raw, _CONDITION_KEYS, path, out)
    key = raw.get("key")
    values = _string_list(raw, "values", path, out) or []
    not_values = _string_list(raw, "notValues", path, out) or []
    if not values and not not_values:
        out.append(error(path, "condition needs values or notValues"))
    if not isinstance(key, str) or not key:
        out.append(error(field(path, "key"), "key is required"))
        return
    try:
        parsed = _parse_key(key)
    except conditions.ConditionKeyError as exc:
        out.append(error(field(path, "key"), str(exc)))
        return
    if action == "CUSTOM" and parsed.is_authn:
        out.append(error(field(path, "key"), f"{key} is not supported with CUSTOM action"))
    for name, entries in (("values", values), ("notValues", not_values)):
        where = field(path, name)
        if parsed.kind in conditions.IP_KEYS:
            _ip_values(entries, where, out)
        elif parsed.kind == "destination.port":
            _port_values(entries, where, out)
        elif parsed.kind == "source.serviceAccount":
            _service_accounts(entries, where, out)
        elif parsed.kind == "source.trustDomain":
            _trust_domains(entries, where, out)


def _validate_rule(raw: object, path: str, action: str, out: list[Finding]) -> None:
    if raw is None:
        out.append(error(path, "rule must not be null (use {} to match everything)"))
        return
    if not _is_map(raw):
        out.append(error(path, "rule must be a mapping"))
        return
    _unknown(raw, _RULE_KEYS, path, out)
    for key, entry_key in (("from", "source"), ("to", "operation")):
        if key not in raw:
            continue
        entries = raw[key]
        if not isinstance(entries, list) or not entries:
            out.append(error(field(path, key), f"{key} must be a non-empty list when present"))
            continue
        base = field(path, key)
        for index, entry in enumerate(entries):
            where = item(base, index)
            body = None
            if _is_map(entry):
                body = entry.get(entry_key)
                _unknown(entry, _ENTRY_KEYS[entry_key], where, out)
            if key == "from":
                _validate_source(body, field(where, entry_key), action, out)
            else:
                _validate_operation(body, field(where, entry_key), out)
    when = raw.get("when")
    if when is not None and not isinstance(when, list):
        out.append(error(field(path, "when"), "must be a list"))
    for index, cond in enumerate(when if isinstance(when, list) else []):
        _validate_condition(cond, item(field(path, "when"), index), action, out)
    has_http, has_tcp = _attribute_kinds(raw)
    if action == "DENY" and has_http and not has_tcp:
        out.append(
            warning(
                path,
                "DENY rule uses only HTTP attributes; on TCP traffic they are "
                "dropped and the rule denies every connection in scope; add ports",
            )
        )


def _attribute_kinds(rule: Mapping[str, Any]) -> tuple[bool, bool]:
    """Whether a rule uses HTTP-only attributes, and whether it uses any TCP attribute."""
    http = tcp = False
    for key, entry_key, http_keys in (
        ("from", "source", _HTTP_SOURCE_KEYS),
        ("to", "operation", _HTTP_OPERATION_KEYS),
    ):
        entries = rule.get(key)
        for entry in entries if isinstance(entries, list) else []:
            body = entry.get(entry_key) if _is_map(entry) else None
            if body is not None and _is_map(body):
                for name in body:
                    if name in http_keys:
                        http = True
                    else:
                        tcp = True
    when = rule.get("when")
    for cond in when if isinstance(when, list) else []:
        try:
            parsed = _parse_key(str(cond.get("key", "")))
        except (conditions.ConditionKeyError, AttributeError):
            continue
        if parsed.http_only:
            http = True
        else:
            tcp = True
    return http, tcp


def validate_authorization_policy(resource: Resource) -> list[Finding]:
    out = metadata_findings(resource, dry_run_allowed=True)  # the dry-run value is judged below
    _check_version(resource, out)
    spec = resource.spec
    _unknown(spec, _AP_SPEC_KEYS, "spec", out)
    _validate_attachment(spec, out)
    action = spec.get("action") or "ALLOW"
    if action not in ACTIONS:
        out.append(error("spec.action", f"action {action!r} must be one of {', '.join(ACTIONS)}"))
    provider = spec.get("provider")
    if action == "CUSTOM":
        if not isinstance(provider, Mapping) or not provider.get("name"):
            out.append(error("spec.provider.name", "CUSTOM action requires provider.name"))
    elif provider is not None:
        out.append(error("spec.provider", "provider may only be set with CUSTOM action"))
    rules = spec.get("rules")
    if rules is not None and not isinstance(rules, list):
        out.append(error("spec.rules", "must be a list"))
        rules = []
    if not rules and action in ("DENY", "CUSTOM"):
        out.append(
            error(
                "spec.rules",
                f"{action} action without rules never triggers; "
                "use rules: [{}] to match everything",
            )
        )
    for index, rule in enumerate(rules or []):
        _validate_rule(rule, item("spec.rules", index), str(action), out)
    annotation = resource.metadata.annotations.get(DRY_RUN_ANNOTATION)
    if annotation is not None:
        where = f"metadata.annotations[{DRY_RUN_ANNOTATION}]"
        if parse_go_bool(annotation) is None:
            out.append(error(where, f"{DRY_RUN_ANNOTATION} must be a boolean, got {annotation!r}"))
        if action not in ("ALLOW", "DENY"):
            out.append(error(where, f"{DRY_RUN_ANNOTATION} only supports ALLOW and DENY actions"))
    return out


# ---------------------------------------------------------------------------------------------
# RequestAuthentication


def _validate_jwks(text: str, path: str, out: list[Finding]) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        out.append(error(path, "inline jwks does not parse as a JWK set (invalid JSON)"))
        return
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        out.append(error(path, "inline jwks does not parse as a JWK set (no 'keys' list)"))
        return
    for index, key in enumerate(keys):
        if not isinstance(key, Mapping) or not isinstance(key.get("kty"), str):
            out.append(error(item(path, index), "JWK must be an object with a 'kty'"))
            continue
        if key["kty"] == "oct" or "d" in key:
            out.append(
                warning(
                    item(path, index),
                    "inline jwks contains private or symmetric key "
                    "material; anyone who can read this resource can mint tokens",
                )
            )


def _validate_jwks_uri(uri: object, path: str, out: list[Finding]) -> None:
    if not isinstance(uri, str) or not uri:
        out.append(error(path, "jwksUri must be a non-empty string"))
        return
    if len(uri) > 2048:
        out.append(error(path, "jwksUri is longer than 2048 characters"))
    try:
        parsed = urllib.parse.urlsplit(uri)
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        out.append(error(path, f"jwksUri {uri!r} is not a valid URL"))
        return
    if parsed.scheme not in ("http", "https"):
        out.append(error(path, f"jwksUri scheme must be http or https, got {parsed.scheme!r}"))
    elif not parsed.hostname:
        out.append(error(path, f"jwksUri {uri!r} has no host"))


def _validate_jwt_rule(raw: object, path: str, out: list[Finding]) -> None:
    if not isinstance(raw, Mapping):
        out.append(error(path, "jwt rule must be a mapping"))
        return
    _unknown(raw, _JWT_RULE_KEYS, path, out)
    uri_keys = [k for k in ("jwksUri", "jwks_uri") if raw.get(k) is not None]
    if not raw.get("issuer") and not uri_keys:
        out.append(error(field(path, "issuer"), "issuer or jwksUri must be set"))
    if raw.get("issuer") is not None and not isinstance(raw.get("issuer"), str):
        out.append(error(field(path, "issuer"), "must be a string"))
    for key in uri_keys:
        _validate_jwks_uri(raw[key], field(path, key), out)
    if raw.get("jwks") is not None:
        if not isinstance(raw["jwks"], str):
            out.append(error(field(path, "jwks"), "must be a string holding a JWK set"))
        else:
            _validate_jwks(raw["jwks"], field(path, "jwks"), out)
        if uri_keys:
            out.append(error(path, "only one of jwks or jwksUri may be set"))
    for key in ("audiences", "fromParams", "fromCookies", "spaceDelimitedClaims"):
        _string_list(raw, key, path, out)
    headers = raw.get("fromHeaders")
    if headers is not None:
        if not isinstance(headers, list):
            out.append(error(field(path, "fromHeaders"), "must be a list"))
        else:
            for index, header in enumerate(headers):
                where = item(field(path, "fromHeaders"), index)
                if (
                    not isinstance(header, Mapping)
                    or not isinstance(header.get("name"), str)
                    or (not header.get("name"))
                ):
                    out.append(error(field(where, "name"), "fromHeaders name must be non-empty"))
                elif not isinstance(header.get("prefix", ""), str):
                    out.append(error(field(where, "prefix"), "must be a string"))
    claims = raw.get("outputClaimToHeaders")
    if claims is not None:
        if not isinstance(claims, list):
            out.append(error(field(path, "outputClaimToHeaders"), "must be a list"))
        else:
            for index, entry in enumerate(claims):
                where = item(field(path, "outputClaimToHeaders"), index)
                entry = entry if isinstance(entry, Mapping) else {}
                header, claim = entry.get("header"), entry.get("claim")
                if not isinstance(claim, str) or not claim:
                    out.append(error(field(where, "claim"), "claim is required"))
                if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
                    out.append(
                        error(
                            field(where, "header"),
                            f"header name {header!r} has invalid "
                            "characters (allowed: letters, digits, '-', '_')",
                        )
                    )
    payload_header = raw.get("outputPayloadToHeader")
    if payload_header is not None and (
        not isinstance(payload_header, str) or not _HEADER_NAME.fullmatch(payload_header)
    ):
        out.append(error(field(path, "outputPayloadToHeader"), "invalid header name"))
    if raw.get("forwardOriginalToken") is not None and not isinstance(
        raw["forwardOriginalToken"], bool
    ):
        out.append(error(field(path, "forwardOriginalToken"), "must be a boolean"))
    if raw.get("presence") not in (None, "OPTIONAL", "REQUIRED"):
        out.append(error(field(path, "presence"), "must be OPTIONAL or REQUIRED"))
    if raw.get("timeout") is not None:
        seconds = parse_duration(str(raw["timeout"]))
        if seconds is None:
            out.append(error(field(path, "timeout"), f"invalid duration {raw['timeout']!r}"))
        elif seconds < 0.001:
            out.append(error(field(path, "timeout"), "JWKS request timeout must be at least 1ms"))


def validate_request_authentication(resource: Resource) -> list[Finding]:
    out = metadata_findings(resource)
    _check_version(resource, out)
    spec = resource.spec
    _unknown(spec, _RA_SPEC_KEYS, "spec", out)
    _validate_attachment(spec, out)
    rules = spec.get("jwtRules")
    if rules is not None and not isinstance(rules, list):
        out.append(error("spec.jwtRules", "must be a list"))
    elif rules:
        if len(rules) > 4096:
            out.append(error("spec.jwtRules", "at most 4096 jwtRules are allowed"))
        for index, rule in enumerate(rules):
            _validate_jwt_rule(rule, item("spec.jwtRules", index), out)
    return out


VALIDATORS: dict[KindKey, Validator] = {
    (group, kind): validator
    for group in VERSIONS
    for kind, validator in (
        (AUTHORIZATION_POLICY, validate_authorization_policy),
        (REQUEST_AUTHENTICATION, validate_request_authentication),
    )
}
