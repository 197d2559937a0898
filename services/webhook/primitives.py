"""Shared value rules (reference section 3): ports, protocols, durations, percents, labels,
selectors, targetRefs, exportTo and RE2 regexes.

Functions named ``*_error`` return a message or ``None``; ``check_*`` functions report findings
for a whole sub-object through a :class:`~meshguard.webhook.fields.Node`.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import re2

from meshguard.webhook.fields import Node, Report
from meshguard.webhook.hosts import is_lower_label

MAX_PORT = 65535
MAX_REGEX = 1024

PROTOCOLS = frozenset(
    p.upper()
    for p in (
        "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-Web", "HTTP_PROXY",
        "TCP", "TLS", "UDP", "Mongo", "Redis", "MySQL",
    )
)  # fmt: skip
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


# ---- ports and protocols -------------------------------------------------------------------


def port_error(value: int | None, *, allow_zero: bool = False) -> str | None:
    if value is None:
        return None
    low = 0 if allow_zero else 1
    if not low <= value <= MAX_PORT:
        return f"port number {value} must be in the range {low}..{MAX_PORT}"
    return None


def port_name_error(name: str) -> str | None:
    if not is_lower_label(name):
        return f"port name {name!r} must be a DNS-1123 label (lowercase alphanumerics and '-')"
    return None


def protocol_error(protocol: str) -> str | None:
    if protocol.upper() not in PROTOCOLS:
        known = ", ".join(sorted(PROTOCOLS))
        return f"unsupported protocol {protocol!r} (one of {known})"
    return None


# ---- durations -----------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
NANOS_PER_MS = 1_000_000
NANOS_PER_S = 1_000_000_000


@functools.lru_cache(maxsize=1024)
def parse_duration(text: str) -> Fraction | None:
    """Nanoseconds in a Go duration string (``1h30m``, ``1.5s``, ``300ms``); None if malformed."""
    sign = 1
    body = text
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return Fraction(0)
    if not body:
        return None
    total = Fraction(0)
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            return None
        total += Fraction(match.group(1)) * _NANOS[match.group(2)]
        pos = match.end()
    return sign * total


@functools.lru_cache(maxsize=1024)
def duration_error(text: str, *, allow_zero: bool = False, whole: int = NANOS_PER_MS) -> str | None:
    """Istio's rule: at least 1ms (or 0 where allowed) and a whole number of ms (or seconds)."""
    nanos = parse_duration(text)
    if nanos is None:
        return f"invalid duration {text!r} (use Go syntax such as 300ms, 1.5s, 2m, 1h)"
    if allow_zero and nanos == 0:
        return None
    if nanos < NANOS_PER_MS:
        return f"duration must be at least 1ms, got {text}"
    if nanos % whole:
        unit = "second" if whole == NANOS_PER_S else "millisecond"
        return f"duration must be a whole number of {unit}s, got {text}"
    return None


def check_duration(node: Node, key: str, *, allow_zero: bool = False) -> None:
    text = node.text(key)
    if text is not None:
        problem = duration_error(text, allow_zero=allow_zero)
        if problem:
            node.error(key, problem)


# ---- percentages ---------------------------------------------------------------------------


def check_int_percent(node: Node, key: str) -> None:
    value = node.integer(key)
    if value is not None and not 0 <= value <= 100:
        node.error(key, f"percentage must be in the range 0..100, got {value}")


def check_percent(node: Node, key: str) -> None:
    """A ``Percent {value: double}`` message: 0, or within [0.0001, 100]."""
    percent = node.child(key)
    if percent is None:
        return
    value = percent.number("value")
    if value is None:
        return
    if value != 0 and not 0.0001 <= value <= 100:
        percent.error("value", f"percentage must be 0 or in the range [0.0001, 100], got {value}")


# ---- labels and selectors ------------------------------------------------------------------

_QUALIFIED = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")


def label_key_error(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or _SUBDOMAIN.fullmatch(prefix) is None):
        return f"label key {key!r}: prefix {prefix!r} must be a DNS-1123 subdomain"
    if len(name) > 63 or _QUALIFIED.fullmatch(name) is None:
        return (
            f"label key {key!r} must be a qualified name (at most 63 alphanumerics, "
            "'-', '_' or '.', starting and ending alphanumeric)"
        )
    return None


def label_value_error(value: str) -> str | None:
    if value and (len(value) > 63 or _QUALIFIED.fullmatch(value) is None):
        return (
            f"label value {value!r} must be empty or at most 63 alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


def check_labels(node: Node, key: str) -> None:
    labels = node.string_map(key)
    for name, value in (labels or {}).items():
        path = f"{node.at(key)}[{name}]"
        problem = label_key_error(name) or label_value_error(value)
        if problem:
            node.report.error(path, problem)


def check_selector(node: Node, key: str, labels_key: str) -> None:
    """A workload selector (``selector.matchLabels`` or ``workloadSelector.labels``)."""
    selector = node.child(key)
    if selector is None:
        return
    labels = selector.string_map(labels_key)
    if not labels:
        selector.warn(
            "",
            f"{key} has no labels: it applies to every workload in the namespace",
        )
        return
    for name, value in labels.items():
        path = f"{selector.at(labels_key)}[{name}]"
        if not name:
            selector.report.error(path, "selector label keys must not be empty")
        elif "*" in name or "*" in value:
            selector.report.error(path, "wildcard '*' is not supported in selector labels")


_TARGET_KINDS = {
    ("", "Service"),
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
}


def check_target_ref(ref: Node) -> None:
    """One targetRef: name required, no namespace, a kind policies can attach to."""
    if not ref.text("name"):
        ref.error("name", "targetRef name is required")
    if ref.text("namespace"):
        ref.error("namespace", "targetRef namespace must be empty (same namespace as the policy)")
    group, kind = ref.text("group") or "", ref.text("kind") or ""
    if (group, kind) not in _TARGET_KINDS:
        ref.error(
            "kind",
            f"targetRef kind {kind!r} (group {group!r}) is not supported: use Service, "
            "ServiceEntry, Gateway or GatewayClass",
        )


def check_policy_target(spec: Node, labels_key: str = "matchLabels") -> None:
    """Only one of selector / targetRef / targetRefs, and each of them well-formed."""
    present = [k for k in ("selector", "targetRef", "targetRefs") if spec.has(k)]
    if len(present) > 1:
        spec.error(
            present[1], f"only one of selector, targetRef or targetRefs may be set: {present}"
        )
    check_selector(spec, "selector", labels_key)
    ref = spec.child("targetRef")
    if ref is not None:
        check_target_ref(ref)
    for _, each in spec.children("targetRefs"):
        check_target_ref(each)


# ---- exportTo ------------------------------------------------------------------------------


def check_export_to(node: Node, namespace: str, *, allow_none: bool = False) -> None:
    """``.``, ``*`` or namespace names, no duplicates; ``*`` (and ``~`` on ServiceEntry) alone."""
    entries = list(node.strings("exportTo"))
    seen: set[str] = set()
    for path, value in entries:
        canonical = namespace if value == "." and namespace else value
        if value == "~" and not allow_none:
            node.report.error(path, "exportTo '~' is only allowed on ServiceEntry")
        elif value not in (".", "*", "~") and not is_lower_label(value):
            node.report.error(path, f"exportTo entry {value!r} must be '.', '*' or a namespace")
        if canonical in seen:
            node.report.error(path, f"duplicate exportTo entry {value!r}")
        seen.add(canonical)
    values = [v for _, v in entries]
    for alone in ("*", "~"):
        if alone in values and len(values) > 1:
            node.error("exportTo", f"exportTo {alone!r} must be the only entry, got {values}")


# ---- regexes -------------------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def regex_error(pattern: str) -> str | None:
    """RE2 syntax as Envoy compiles it: Python's ``re`` would accept lookarounds Envoy refuses."""
    if not pattern:
        return "regex must not be empty"
    if len(pattern) > MAX_REGEX:
        return f"regex is {len(pattern)} characters long, at most {MAX_REGEX} are allowed"
    return _re2_error(pattern)


@functools.lru_cache(maxsize=4096)
def _re2_error(pattern: str) -> str | None:
    """Compiling is the costly part of a review with regex matches; the same route regexes
    come back in every update of an object, so each distinct pattern is compiled once."""
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return f"invalid RE2 regex {pattern!r}: {reason}"
    return None


def is_prime(value: int) -> bool:
    if value < 2:
        return False
    if value % 2 == 0:
        return value == 2
    factor = 3
    while factor * factor <= value:
        if value % factor == 0:
            return False
        factor += 2
    return True


def decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def report_unless(report: Report, path: str, problem: str | None) -> None:
    if problem:
        report.error(path, problem)
