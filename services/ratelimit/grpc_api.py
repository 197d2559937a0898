"""RLS v3 ``ShouldRateLimit``: protobuf in, :mod:`service` decides, protobuf out.

Served either by the lean h2c server (:mod:`meshguard.common.leangrpc`, raw bytes in and out;
the default) or by grpc.aio (for reflection users); both share :class:`RateLimitRpc`.

Errors follow the reference: a request error is gRPC ``UNKNOWN`` with the reference's message
(Envoy then applies ``failure_mode_deny``). A counter-store failure is ``UNAVAILABLE`` — or,
with fail-open, an OK answer with empty statuses so traffic flows while Redis is away.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf import struct_pb2  # type: ignore[import-untyped]

from meshguard.common.leangrpc import GrpcError, Handler
from meshguard.ratelimit.metrics import RESPONSE_TIME
from meshguard.ratelimit.model import (
    EMPTY_STATUS,
    BackendError,
    Code,
    Descriptor,
    LimitOverride,
    Request,
    RequestError,
    Response,
)
from meshguard.ratelimit.service import RateLimitService

log = logging.getLogger("meshguard.ratelimit")

SERVICE_NAME = "envoy.service.ratelimit.v3.RateLimitService"
METHOD_PATH = f"/{SERVICE_NAME}/ShouldRateLimit"

_PbRequest = rls_pb2.RateLimitRequest
_PbResponse = rls_pb2.RateLimitResponse
_PbStatus = rls_pb2.RateLimitResponse.DescriptorStatus
_PbLimit = rls_pb2.RateLimitResponse.RateLimit


def from_pb(message: Any) -> Request:
    """A ``RateLimitRequest`` as a :class:`Request` (presence of hits_addend kept)."""
    descriptors = []
    for d in message.descriptors:
        limit = None
        if d.HasField("limit"):
            limit = LimitOverride(d.limit.requests_per_unit, d.limit.unit)
        addend = d.hits_addend.value if d.HasField("hits_addend") else None
        entries = tuple((e.key, e.value) for e in d.entries)
        descriptors.append(Descriptor(entries, limit, addend))
    return Request(message.domain, tuple(descriptors), message.hits_addend)


def to_pb(response: Response) -> Any:
    statuses = []
    for status in response.statuses:
        pb = _PbStatus(code=status.code, limit_remaining=status.limit_remaining)
        limit = status.current_limit
        if limit is not None:
            pb.current_limit.requests_per_unit = limit.requests_per_unit
            pb.current_limit.unit = limit.unit
            if limit.name:
                pb.current_limit.name = limit.name
        if status.duration_until_reset is not None:
            pb.duration_until_reset.seconds = status.duration_until_reset
        statuses.append(pb)
    out = _PbResponse(overall_code=response.overall_code, statuses=statuses)
    for key, value in response.response_headers_to_add:
        out.response_headers_to_add.add(key=key, value=value)
    if response.dynamic_metadata is not None:
        metadata = struct_pb2.Struct()
        metadata.update(response.dynamic_metadata)
        out.dynamic_metadata.CopyFrom(metadata)
    return out


def fail_open_response(request: Request) -> Response:
    return Response(Code.OK, (EMPTY_STATUS,) * len(request.descriptors))


class RateLimitRpc:
    """One ShouldRateLimit call, whichever server carries it; errors as :class:`GrpcError`."""

    def __init__(self, service: RateLimitService, *, fail_open: bool = False) -> None:
        self.service = service
        self.fail_open = fail_open

    async def should_rate_limit(self, message: Any) -> Any:
        started = time.perf_counter()
        request = from_pb(message)
        self.service.stats.total_requests += 1
        try:
            response = await self.service.should_rate_limit(request)
        except RequestError as exc:
            raise GrpcError(grpc.StatusCode.UNKNOWN, str(exc)) from None
        except BackendError as exc:
            if not self.fail_open:
                raise GrpcError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
            response = fail_open_response(request)
        finally:
            RESPONSE_TIME.observe(time.perf_counter() - started)
        return to_pb(response)

    async def raw(self, request: bytes) -> bytes:
        """The lean server's handler: serialized RateLimitRequest in, RateLimitResponse out."""
        try:
            message = _PbRequest.FromString(request)
        except Exception:  # protobuf's DecodeError is not typed
            raise GrpcError(grpc.StatusCode.INTERNAL, "cannot parse RateLimitRequest") from None
        reply: bytes = (await self.should_rate_limit(message)).SerializeToString()
        return reply


class RateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):  # type: ignore[misc]
    def __init__(self, service: RateLimitService, *, fail_open: bool = False) -> None:
        self.rpc = RateLimitRpc(service, fail_open=fail_open)

    async def ShouldRateLimit(self, message: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await self.rpc.should_rate_limit(message)
        except GrpcError as exc:
            await context.abort(exc.code, exc.message)


def register(service: RateLimitService, *, fail_open: bool = False) -> Any:
    """A ``register(server)`` for :meth:`ServiceRuntime.add_grpc`."""
    servicer = RateLimitServicer(service, fail_open=fail_open)

    def add(server: grpc.aio.Server) -> None:
        rls_pb2_grpc.add_RateLimitServiceServicer_to_server(servicer, server)

    return add


def lean_methods(service: RateLimitService, *, fail_open: bool = False) -> dict[str, Handler]:
    """The ``methods`` for :meth:`ServiceRuntime.add_lean_grpc`."""
    return {METHOD_PATH: RateLimitRpc(service, fail_open=fail_open).raw}
