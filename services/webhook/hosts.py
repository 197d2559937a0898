"""Host names as Istio accepts them: FQDNs, wildcard domains, IPs and ``namespace/host`` forms.

Each check returns an error message, or ``None`` when the value is fine, so callers decide the
field path and the severity (the same partial wildcard is an error on a Gateway and a warning on
a ServiceEntry).
"""

from __future__ import annotations

import functools
import ipaddress
import re

_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")
# After the leading ``*`` of a wildcard label: ``*``, ``*foo`` and ``*-foo`` are accepted.
_WILDCARD_REST = re.compile(r"[-a-zA-Z0-9]*[a-zA-Z0-9]")
MAX_HOST = 255
MAX_LABEL = 63
# Names repeat across the fields of one object and across the updates of many: the checks are
# pure, so each distinct string is judged once (bounded, so hostile input cannot grow them).
_cached = functools.lru_cache(maxsize=4096)


@_cached
def is_label(value: str) -> bool:
    """A DNS-1123 label (uppercase accepted, as Istio does for host names)."""
    return len(value) <= MAX_LABEL and _LABEL.fullmatch(value) is not None


@_cached
def is_lower_label(value: str) -> bool:
    """A Kubernetes DNS-1123 label: names, namespaces, port names (lowercase only)."""
    return is_label(value) and value == value.lower()


@_cached
def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@_cached
def is_cidr_or_ip(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _labels_error(host: str, labels: list[str]) -> str | None:
    for index, label in enumerate(labels):
        if not is_label(label):
            return f"domain name {host!r} invalid (label {label!r} invalid)"
        if index == len(labels) - 1 and label.isdigit():
            return (
                f"domain name {host!r} invalid (top level domain {label!r} cannot be all-numeric)"
            )
    return None


def _preconditions(host: str) -> str | None:
    if not host:
        return "domain name must not be empty"
    if len(host) > MAX_HOST:
        return f"domain name {host[:32]!r}... is too long (at most {MAX_HOST} characters)"
    return None


@_cached
def fqdn_error(host: str) -> str | None:
    """A plain DNS name (no wildcard); a trailing dot is allowed."""
    problem = _preconditions(host)
    if problem:
        return problem
    return _labels_error(host, host.removesuffix(".").split("."))


@_cached
def wildcard_domain_error(host: str) -> str | None:
    """A DNS name whose first label may be ``*``, ``*foo`` or ``*-foo``."""
    problem = _preconditions(host)
    if problem:
        return problem
    first, dot, rest = host.removesuffix(".").partition(".")
    if first.startswith("*"):
        tail = first[1:]
        if tail and (len(tail) > MAX_LABEL - 1 or _WILDCARD_REST.fullmatch(tail) is None):
            return f"domain name {host!r} invalid (label {first!r} invalid)"
    elif not is_label(first):
        return f"domain name {host!r} invalid (label {first!r} invalid)"
    if dot:
        return _labels_error(host, rest.split("."))
    if first.isdigit():
        return f"domain name {host!r} invalid (top level domain {first!r} cannot be all-numeric)"
    return None


@_cached
def wildcard_domain_or_ip_error(host: str) -> str | None:
    problem = wildcard_domain_error(host)
    return None if problem is None or is_ip(host) else problem


def is_partial_wildcard(host: str) -> bool:
    """Contains ``*`` but is neither ``*`` nor ``*.<domain>`` (``*-api.example.com``)."""
    return "*" in host and host != "*" and not host.startswith("*.")


def is_short_name(host: str) -> bool:
    """A name without a dot (``reviews``), resolved relative to the config namespace."""
    return host != "*" and "." not in host.removesuffix(".")


def covers(general: str, specific: str) -> bool:
    """Whether the (possibly wildcard) host ``general`` matches every name ``specific`` does."""
    general, specific = general.lower(), specific.lower()
    if general == specific or general == "*":
        return True
    if general.startswith("*."):
        suffix = general[1:]
        if specific.startswith("*."):
            return specific[1:].endswith(suffix) and len(specific) > len(general)
        return specific.endswith(suffix)
    return False


def overlap(a: str, b: str) -> bool:
    return covers(a, b) or covers(b, a)


def namespaced_host_error(
    value: str, *, require_namespace: bool, allow_tilde: bool
) -> tuple[str | None, str]:
    """Check ``namespace/host`` (Gateway servers, Sidecar egress); return (error, host part).

    The namespace part is ``*``, ``.`` or a DNS label (``~label`` too on Sidecars); the host part
    is ``*`` or an FQDN / wildcard domain / IP, never a short name or a partial wildcard.
    """
    namespace, slash, host = value.partition("/")
    if not slash:
        if require_namespace:
            return f"host {value!r} must be of the form namespace/dnsName", value
        namespace, host = "*", value
    if not namespace or not host:
        return f"host {value!r}: namespace and host name must both be non-empty", host
    bare = namespace[1:] if allow_tilde and namespace.startswith("~") else namespace
    if bare not in ("*", ".") and not is_lower_label(bare) and not (allow_tilde and not bare):
        return f"host {value!r}: namespace {namespace!r} must be '*', '.' or a DNS-1123 label", host
    if host == "*":
        return None, host
    if is_partial_wildcard(host):
        return f"host {value!r}: partial wildcard {host!r} is not allowed here", host
    if is_ip(host):
        return None, host
    problem = wildcard_domain_error(host)
    if problem:
        return problem, host
    if is_short_name(host):
        return f"host {value!r}: short names (non-FQDN) are not allowed here", host
    return None, host
