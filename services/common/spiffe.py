"""SPIFFE IDs: parse, validate and format ``spiffe://<trust-domain>/<path>`` URIs.

The rules are the SPIFFE ID specification's, which are deliberately stricter than generic URI
syntax: one spelling per identity (no percent-encoding, no ``.``/``..`` segments, no empty
segments, a lowercase trust domain, no port or userinfo) so that two IDs are equal exactly when
their strings are. Authorization decisions compare these strings, so anything ambiguous is
rejected instead of normalised.
"""

from __future__ import annotations

import dataclasses
import string

SCHEME_PREFIX = "spiffe://"
MAX_LENGTH = 2048

_TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
_SEGMENT_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")


class SpiffeIdError(ValueError):
    """A string that is not a valid SPIFFE ID; the message says which rule it breaks."""


@dataclasses.dataclass(frozen=True, slots=True)
class SpiffeId:
    """A valid SPIFFE ID: a trust domain and a path that is empty or starts with ``/``."""

    trust_domain: str
    path: str = ""

    def __post_init__(self) -> None:
        _check_trust_domain(self.trust_domain)
        _check_path(self.path)

    @property
    def namespace(self) -> str | None:
        """The Kubernetes namespace of an Istio-style ``/ns/<ns>/sa/<sa>`` ID, else None."""
        parts = self._workload_parts()
        return parts[0] if parts else None

    @property
    def service_account(self) -> str | None:
        """The service account of an Istio-style ``/ns/<ns>/sa/<sa>`` ID, else None."""
        parts = self._workload_parts()
        return parts[1] if parts else None

    @property
    def principal(self) -> str:
        """The ID without its scheme, as Istio's ``principals`` fields spell it."""
        return self.trust_domain + self.path

    def _workload_parts(self) -> tuple[str, str] | None:
        segments = self.path.split("/")[1:]
        if len(segments) == 4 and segments[0] == "ns" and segments[2] == "sa":
            return segments[1], segments[3]
        return None

    def __str__(self) -> str:
        return SCHEME_PREFIX + self.principal


def parse(uri: str) -> SpiffeId:
    """Parse a SPIFFE ID URI, raising SpiffeIdError with the broken rule when it is invalid."""
    if not uri:
        raise SpiffeIdError("SPIFFE ID is empty")
    if len(uri.encode()) > MAX_LENGTH:
        raise SpiffeIdError(f"SPIFFE ID is longer than {MAX_LENGTH} bytes")
    if not uri.startswith(SCHEME_PREFIX):
        raise SpiffeIdError(f"{uri!r}: SPIFFE ID must start with {SCHEME_PREFIX!r}")
    rest = uri[len(SCHEME_PREFIX) :]
    for char, what in (("?", "a query"), ("#", "a fragment")):
        if char in rest:
            raise SpiffeIdError(f"{uri!r}: SPIFFE ID must not contain {what} ({char!r})")
    trust_domain, slash, path = rest.partition("/")
    try:
        return SpiffeId(trust_domain, slash + path)
    except SpiffeIdError as exc:
        raise SpiffeIdError(f"{uri!r}: {exc}") from None


def for_workload(trust_domain: str, namespace: str, service_account: str) -> SpiffeId:
    """The Istio-style identity ``spiffe://<td>/ns/<namespace>/sa/<service_account>``."""
    for what, value in (("namespace", namespace), ("service account", service_account)):
        if not value or "/" in value:
            raise SpiffeIdError(f"{what} {value!r} must be one non-empty path segment")
    return SpiffeId(trust_domain, f"/ns/{namespace}/sa/{service_account}")


def _check_trust_domain(trust_domain: str) -> None:
    if not trust_domain:
        raise SpiffeIdError("trust domain is empty")
    if "@" in trust_domain:
        raise SpiffeIdError("trust domain must not contain userinfo ('@')")
    if ":" in trust_domain:
        raise SpiffeIdError("trust domain must not contain a port (':')")
    bad = sorted(set(trust_domain) - _TRUST_DOMAIN_CHARS)
    if bad:
        raise SpiffeIdError(
            f"trust domain {trust_domain!r} contains {_quote(bad)}; only lowercase "
            "letters, digits, '.', '-' and '_' are allowed"
        )


def _check_path(path: str) -> None:
    if not path:
        return
    if not path.startswith("/"):
        raise SpiffeIdError(f"path {path!r} must start with '/'")
    for segment in path[1:].split("/"):
        if not segment:
            raise SpiffeIdError("path has an empty segment (a trailing '/' or '//')")
        if segment in (".", ".."):
            raise SpiffeIdError(f"path must not contain {segment!r} segments")
        bad = sorted(set(segment) - _SEGMENT_CHARS)
        if bad:
            raise SpiffeIdError(
                f"path segment {segment!r} contains {_quote(bad)}; only letters, "
                "digits, '.', '-' and '_' are allowed"
            )


def _quote(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars)
