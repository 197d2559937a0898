"""Request and response of ``ShouldRateLimit`` as plain immutable values.

The gRPC and HTTP adapters translate the wire formats to and from these; the service logic never
sees protobuf or JSON.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from meshguard.ratelimit.config import RateLimit

UNLIMITED_REMAINING = 2**32 - 1


class Code(enum.IntEnum):
    """``RateLimitResponse.Code``; UNKNOWN is never produced (Envoy treats it as OK)."""

    UNKNOWN = 0
    OK = 1
    OVER_LIMIT = 2


@dataclasses.dataclass(frozen=True, slots=True)
class LimitOverride:
    """``RateLimitDescriptor.limit``: ``unit`` is the raw enum number sent by Envoy."""

    requests_per_unit: int
    unit: int


@dataclasses.dataclass(frozen=True, slots=True)
class Descriptor:
    entries: tuple[tuple[str, str], ...]
    limit: LimitOverride | None = None
    hits_addend: int | None = None  # present (even 0) overrides the request-level addend


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    domain: str
    descriptors: tuple[Descriptor, ...]
    hits_addend: int = 0  # 0 means 1


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    code: Code
    current_limit: RateLimit | None = None
    limit_remaining: int = 0
    duration_until_reset: int | None = None


EMPTY_STATUS = Status(Code.OK)
UNLIMITED_STATUS = Status(Code.OK, limit_remaining=UNLIMITED_REMAINING)


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    overall_code: Code
    statuses: tuple[Status, ...]
    response_headers_to_add: tuple[tuple[str, str], ...] = ()
    dynamic_metadata: Mapping[str, Any] | None = None


class RequestError(Exception):
    """A request the reference rejects with a plain error (gRPC UNKNOWN, HTTP 400)."""


class BackendError(Exception):
    """The counter store failed (Redis down, timeout): the call cannot be decided."""
