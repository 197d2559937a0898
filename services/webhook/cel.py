"""The CEL rules (``x-kubernetes-validations``) of Istio's CRDs, as Python predicates.

Istio's CRDs use a few dozen distinct rules. Rather than embed a CEL interpreter we map each
rule's exact text to an equivalent predicate; ``tests/webhook/test_cel.py`` fails when a shipped
CRD carries a rule this table does not know, so a CRD update cannot silently skip a check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from meshguard.webhook.primitives import NANOS_PER_MS, parse_duration

Predicate = Callable[[Any], bool]
_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")


def normalize(rule: str) -> str:
    return " ".join(rule.split())


def _has(obj: Any, key: str) -> bool:
    return isinstance(obj, Mapping) and obj.get(key) is not None


def _count(obj: Any, *keys: str) -> int:
    return sum(1 for k in keys if _has(obj, k))


def _get(obj: Any, key: str, default: Any) -> Any:
    return obj.get(key) if _has(obj, key) else default


def _duration_at_least_1ms(value: Any) -> bool:
    nanos = parse_duration(value) if isinstance(value, str) else None
    return nanos is None or nanos >= NANOS_PER_MS  # malformed: reported by the validators


def _int_key(key: Any) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def _port_keys(value: Any) -> bool:
    keys = [_int_key(k) for k in value] if isinstance(value, Mapping) else []
    return all(k is not None and 0 < k <= 65535 for k in keys)


def _url_scheme(value: Any) -> str | None:
    try:
        return urlsplit(value).scheme if isinstance(value, str) else None
    except ValueError:
        return None


def _image_url(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    scheme = _url_scheme(value) if "://" in value else ""
    return scheme in ("", "http", "https", "file", "oci")


def _unique_numbers(value: Any) -> bool:
    numbers = (
        [p.get("number") for p in value if isinstance(p, Mapping)]
        if isinstance(value, list)
        else []
    )
    return len(numbers) == len(set(map(repr, numbers)))


def _keys(value: Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, Mapping) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


_RULES: list[tuple[str, Predicate]] = [
    ("duration(self) >= duration('1ms')", _duration_at_least_1ms),
    ("0 < self && self <= 65535", lambda v: not isinstance(v, int) or 0 < v <= 65535),
    ('!self.contains("*")', lambda v: "*" not in _str(v)),
    ("self.size() == 0", lambda v: not v),
    ('self.all(key, !key.contains("*"))', lambda v: all("*" not in k for k in _keys(v))),
    ("self.all(key, key.size() != 0)", lambda v: all(k != "" for k in _keys(v))),
    (
        'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || '
        'self.substring(7, 8) == "@") : true',
        lambda v: not _str(v).startswith("unix://") or _str(v)[7:8] in ("/", "@"),
    ),
    (
        'self.startsWith("unix://") ? !self.endsWith("/") : true',
        lambda v: not _str(v).startswith("unix://") or not _str(v).endswith("/"),
    ),
    (
        "self.all(key, size(key) < 63 && "
        'key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))',
        lambda v: all(len(k) < 63 and _LABEL.fullmatch(k) for k in _keys(v)),
    ),
    (
        '(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true',
        lambda v: not _str(_get(v, "address", "")).startswith("unix://") or not _has(v, "ports"),
    ),
    (
        "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + "
        "(has(self.targetRefs) ? 1 : 0) <= 1",
        lambda v: _count(v, "selector", "targetRef", "targetRefs") <= 1,
    ),
    (
        "(has(self.tlsCertificates) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
        lambda v: _count(v, "tlsCertificates", "credentialNames") <= 1,
    ),
    (
        "(has(self.credentialName) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
        lambda v: _count(v, "credentialName", "credentialNames") <= 1,
    ),
    (
        "(has(self.credentialNames) ? 1 : 0) + (has(self.tlsCertificates) ? 1 : 0) <= 1",
        lambda v: _count(v, "credentialNames", "tlsCertificates") <= 1,
    ),
    ("has(self.address) || has(self.network)", lambda v: _count(v, "address", "network") > 0),
    ('url(self).getScheme() in ["http", "https"]', lambda v: _url_scheme(v) in ("http", "https")),
    ('self != "*"', lambda v: v != "*"),
    ("self.all(l1, self.exists_one(l2, l1.number == l2.number))", _unique_numbers),
    (
        "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1",
        lambda v: _count(v, "workloadSelector", "endpoints") <= 1,
    ),
    (
        '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && '
        '!((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))',
        lambda v: (
            not (
                any("/" in _str(a) for a in _get(v, "addresses", []) or [])
                and _get(v, "resolution", "NONE") not in ("STATIC", "NONE")
            )
        ),
    ),
    (
        '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? '
        "!has(self.endpoints) : true",
        lambda v: _get(v, "resolution", "NONE") != "NONE" or not _has(v, "endpoints"),
    ),
    (
        '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? '
        "((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true",
        lambda v: (
            _get(v, "resolution", "") != "DNS_ROUND_ROBIN"
            or len(_get(v, "endpoints", []) or []) <= 1
        ),
    ),
    ('self in ["", "HTTP", "HTTPS"]', lambda v: v in ("", "HTTP", "HTTPS")),
    (
        '(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)',
        lambda v: _get(v, "valueFrom", "") != "HOST" or not _has(v, "value"),
    ),
    (
        "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? "
        "(!has(self.principals) && !has(self.notPrincipals) && !has(self.namespaces) && "
        "!has(self.notNamespaces)) : true",
        lambda v: (
            _count(v, "serviceAccounts", "notServiceAccounts") == 0
            or _count(v, "principals", "notPrincipals", "namespaces", "notNamespaces") == 0
        ),
    ),
    ("self.all(key, 0 < int(key) && int(key) <= 65535)", _port_keys),
    (
        "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
        "self.selector.matchLabels : {}).size() > 0) : true",
        lambda v: (
            not _has(v, "portLevelMtls") or bool(_get(_get(v, "selector", {}), "matchLabels", {}))
        ),
    ),
    (
        "(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + "
        "(has(self.jwks) ? 1 : 0) <= 1",
        lambda v: _count(v, "jwksUri", "jwks_uri", "jwks") <= 1,
    ),
    (
        '((has(self.operation) ? self.operation : "") == "UPSERT") ? (self.value != "") : true',
        lambda v: _get(v, "operation", "") != "UPSERT" or _get(v, "value", "") != "",
    ),
    (
        '((has(self.operation) ? self.operation : "") == "REMOVE") ? !has(self.value) : true',
        lambda v: _get(v, "operation", "") != "REMOVE" or not _has(v, "value"),
    ),
    (
        'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "file", "oci"]) : '
        '(isURL("http://" + self) && url("http://" + self).getScheme() in '
        '["", "http", "https", "file", "oci"])',
        _image_url,
    ),
    (
        'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : '
        '(isURL("http://" + self) && url("http://" + self).getScheme() in '
        '["", "http", "https", "oci", "file"])',
        _image_url,
    ),
    (
        "(has(self.selector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
        lambda v: _count(v, "selector", "targetRefs") <= 1,
    ),
    ("has(self.wasm) != has(self.lua)", lambda v: _has(v, "wasm") != _has(v, "lua")),
    (
        'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : '
        "!has(self.waypoint)) : !has(self.waypoint)",
        lambda v: _has(v, "waypoint") == (_get(v, "context", "") == "WAYPOINT"),
    ),
    (
        "(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
        lambda v: _count(v, "workloadSelector", "targetRefs") <= 1,
    ),
]
RULES: dict[str, Predicate] = {normalize(k): v for k, v in _RULES}


def predicate(rule: str) -> Predicate | None:
    """The predicate for a CRD rule, or None when the table does not know it."""
    return RULES.get(normalize(rule))


def holds(rule: str, value: Any) -> bool | None:
    """Whether ``value`` satisfies ``rule``; None for an unknown rule. Never raises."""
    check = predicate(rule)
    return None if check is None else satisfied(check, value)


def satisfied(check: Predicate, value: Any) -> bool:
    """``check(value)``, never raising: a value of the wrong type is the structural check's."""
    try:
        return bool(check(value))
    except (TypeError, ValueError, AttributeError):
        return True
