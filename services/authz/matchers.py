"""Istio's string, principal, host and IP matchers, compiled from policy values.

Each builder turns one policy value into a predicate once, at load time. The generic rule: a
lone ``*`` means "present and non-empty", a leading ``*`` is a suffix match, a trailing ``*`` a
prefix match, anything else exact; a ``*`` in the middle is a literal character.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from meshguard.authz import pathtemplate
from meshguard.authz.attributes import IPAddress

StrMatch = Callable[[str], bool]
SPIFFE = "spiffe://"


def _nonempty(value: str) -> bool:
    return value != ""


def _always(value: str) -> bool:
    return True


def string(value: str) -> StrMatch:
    """Envoy StringMatcher as istiod builds it (``*`` is the regex ``.+``)."""
    if value == "*":
        return _nonempty
    if value.startswith("*"):
        suffix = value[1:]
        return lambda s: s.endswith(suffix)
    if value.endswith("*"):
        prefix = value[:-1]
        return lambda s: s.startswith(prefix)
    return value.__eq__


def header(value: str) -> StrMatch:
    """Envoy HeaderMatcher: ``*`` is presence, so it also matches an empty header value.
    Callers only call it when the header exists."""
    if value == "*":
        return _always
    return string(value)


def host(value: str) -> StrMatch:
    """``:authority`` match, case-insensitive; the port is part of the compared value.
    Callers pass the lower-cased host."""
    if value == "*":
        return _always
    return string(value.lower())


def principal(value: str) -> StrMatch:
    """Peer identity: the policy value never carries ``spiffe://``; the peer URI always does."""
    if value == "*":
        return _nonempty
    if value.startswith("*"):
        suffix = value[1:]
        return lambda s: s.startswith(SPIFFE) and s.endswith(suffix)
    if value.endswith("*"):
        prefix = SPIFFE + value[:-1]
        return lambda s: s.startswith(prefix)
    exact = SPIFFE + value
    return exact.__eq__


def namespace(value: str) -> StrMatch:
    """Istio's ``.*/ns/<ns>/.*`` regex over the peer URI, every ``*`` becoming ``.*``."""
    body = ".*".join(re.escape(part) for part in value.split("*"))
    pattern = re.compile(f".*/ns/{body}/.*", re.DOTALL)
    return lambda s: pattern.fullmatch(s) is not None


def service_account(value: str, policy_namespace: str) -> StrMatch:
    """``ns/sa`` or ``sa`` (the policy's namespace), anchored so ``sleep`` != ``sleep-v2``."""
    ns, _, name = value.rpartition("/")
    pattern = re.compile(
        f"spiffe://.+/ns/{re.escape(ns or policy_namespace)}/(.+/)?sa/{re.escape(name)}(/.+)?",
        re.DOTALL,
    )
    return lambda s: pattern.fullmatch(s) is not None


def trust_domain(value: str) -> StrMatch:
    """The trust-domain part of a SPIFFE URI, with one leading or trailing ``*``."""
    if value == "*":
        body = "[^/]+"
    elif value.startswith("*"):
        body = "[^/]*" + re.escape(value[1:])
    elif value.endswith("*"):
        body = re.escape(value[:-1]) + "[^/]*"
    else:
        body = re.escape(value)
    pattern = re.compile(f"spiffe://{body}/.*", re.DOTALL)
    return lambda s: pattern.fullmatch(s) is not None


def path(value: str) -> StrMatch:
    """``paths`` entry: a URI template (``{*}``/``{**}``) or the generic string rule."""
    if pathtemplate.is_template(value):
        pattern = pathtemplate.compile_template(value)
        return lambda s: pattern.fullmatch(s) is not None
    return string(value)


def request_principal(value: str) -> Callable[[str, str], bool]:
    """``iss/sub`` split at the last ``/``; iss and sub are matched separately."""
    if value == "*":
        return lambda iss, sub: iss != "" and sub != ""
    if "/" in value:
        iss_value, _, sub_value = value.rpartition("/")
        match_iss, match_sub = string(iss_value), string(sub_value)
        return lambda iss, sub: match_iss(iss) and match_sub(sub)
    if value.endswith("*"):
        prefix = value[:-1]
        return lambda iss, sub: iss.startswith(prefix) and sub != ""
    if value.startswith("*"):
        suffix = value[1:]
        return lambda iss, sub: iss != "" and sub.endswith(suffix)
    # A value without '/' can never equal "iss/sub".
    return lambda iss, sub: False


def networks(values: Sequence[str]) -> Callable[[IPAddress | None], bool]:
    """CIDR containment; a bare IP is a host route; v4 and v6 never match each other."""
    nets = tuple(ipaddress.ip_network(v, strict=False) for v in values)
    return lambda ip: ip is not None and any(ip in net for net in nets)


def any_of(matchers: Sequence[StrMatch]) -> StrMatch:
    """One predicate over several values (ORed)."""
    if len(matchers) == 1:
        return matchers[0]
    return lambda s: any(m(s) for m in matchers)
