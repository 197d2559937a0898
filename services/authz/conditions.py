"""The ``when`` condition keys Istio understands, parsed once into a kind and arguments.

Validation and the compiler share this so a key means the same thing in both places.
"""

from __future__ import annotations

import dataclasses
import re

# Keys taking no argument, and whether only HTTP requests carry them.
PLAIN_KEYS: dict[str, bool] = {
    "source.ip": False,
    "remote.ip": False,
    "source.namespace": False,
    "source.principal": False,
    "source.serviceAccount": False,
    "source.trustDomain": False,
    "request.auth.principal": True,
    "request.auth.audiences": True,
    "request.auth.presenter": True,
    "destination.ip": False,
    "destination.port": False,
    "connection.sni": False,
}
IP_KEYS = frozenset({"source.ip", "remote.ip", "destination.ip"})
# Keys a CUSTOM policy may not use: identity is not known yet when ext_authz is triggered.
AUTHN_KEYS = frozenset(
    {"source.namespace", "source.principal", "source.serviceAccount", "source.trustDomain"}
)
REJECTED_PREFIXES = {
    "destination.labels": "destination.labels is not supported; use the policy selector",
    "destination.namespace": "destination.namespace is not supported; use metadata.namespace",
    "destination.name": "destination.name is not supported",
    "destination.user": "destination.user is not supported",
}

_BRACKETS = re.compile(r"\[([^\[\]]+)\]")
_HEADER = re.compile(r"request\.headers\[([^\[\]]+)\]")
_CLAIMS = re.compile(r"request\.auth\.claims((?:\[[^\[\]]+\])+)")
_ENVOY = re.compile(r"experimental\.envoy\.filters\.([^\[\]]+?)((?:\[[^\[\]]+\])+)")


@dataclasses.dataclass(frozen=True, slots=True)
class ConditionKey:
    """``kind`` is the plain key, or ``request.headers`` / ``request.auth.claims`` /
    ``experimental.envoy.filters`` with the bracketed ``args`` (and the ``filter`` name)."""

    kind: str
    args: tuple[str, ...] = ()
    filter: str = ""

    @property
    def http_only(self) -> bool:
        if self.kind in PLAIN_KEYS:
            return PLAIN_KEYS[self.kind]
        return self.kind in ("request.headers", "request.auth.claims")

    @property
    def is_authn(self) -> bool:
        return self.kind in AUTHN_KEYS or self.kind.startswith("request.auth.")


class ConditionKeyError(ValueError):
    """A key Istio rejects; the message says why."""


def parse_key(key: str) -> ConditionKey:
    if key in PLAIN_KEYS:
        return ConditionKey(key)
    if match := _HEADER.fullmatch(key):
        return ConditionKey("request.headers", (match.group(1),))
    if match := _CLAIMS.fullmatch(key):
        return ConditionKey("request.auth.claims", tuple(_BRACKETS.findall(match.group(1))))
    if match := _ENVOY.fullmatch(key):
        return ConditionKey(
            "experimental.envoy.filters",
            tuple(_BRACKETS.findall(match.group(2))),
            "envoy.filters." + match.group(1),
        )
    for prefix, reason in REJECTED_PREFIXES.items():
        if key == prefix or key.startswith(prefix + "["):
            raise ConditionKeyError(f"{key}: {reason}")
    if key.startswith("request.headers"):
        raise ConditionKeyError(f"{key}: request.headers must be written request.headers[name]")
    if key.startswith("request.auth.claims"):
        raise ConditionKeyError(
            f"{key}: request.auth.claims must be written request.auth.claims[name]"
        )
    if key.startswith("experimental.envoy.filters."):
        raise ConditionKeyError(f"{key}: must be experimental.envoy.filters.<filter>[<key>]")
    raise ConditionKeyError(f"unknown condition key {key!r}")
