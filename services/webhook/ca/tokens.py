"""Who is asking: the identity a verified ServiceAccount token proves, and the verifier contract.

The CA never trusts names a workload asserts about itself. A pluggable verifier turns the
projected token (audience ``meshguard-ca``) into a namespace and service account; the SPIFFE ID
is built from those alone. Two verifiers exist: the service-account issuer's public keys
(:mod:`.issuer_keys`, offline) and the Kubernetes TokenReview API (:mod:`.tokenreview`).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

DEFAULT_AUDIENCE = "meshguard-ca"
_SA_PREFIX = "system:serviceaccount:"


class TokenRejected(Exception):
    """The token does not prove an identity; ``reason`` is a stable label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class VerifierUnavailable(Exception):
    """The verifier could not reach its source of truth; the caller should retry."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceAccountIdentity:
    namespace: str
    service_account: str


class TokenVerifier(Protocol):
    """Turns a bearer token into the identity it proves, or raises TokenRejected."""

    async def verify(self, token: str) -> ServiceAccountIdentity: ...


def identity_from_username(username: str) -> ServiceAccountIdentity:
    """Parse ``system:serviceaccount:<ns>:<sa>`` (the TokenReview user and the token ``sub``)."""
    if not username.startswith(_SA_PREFIX):
        raise TokenRejected("not-service-account", f"{username!r} is not a service account")
    namespace, _, name = username[len(_SA_PREFIX) :].partition(":")
    if not namespace or not name or ":" in name:
        raise TokenRejected("not-service-account", f"malformed service account {username!r}")
    return ServiceAccountIdentity(namespace, name)
