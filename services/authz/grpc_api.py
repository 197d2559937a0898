"""``envoy.service.auth.v3.Authorization/Check`` on grpc.aio: CheckRequest in, CheckResponse out.

Responses are serialised here, not by grpc: nearly every decision has one of a few shapes
(the same policy allowing, the same rule denying, the same output headers), so the bytes of each
shape are built once (protobuf message, Struct metadata, serialisation) and reused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from google.rpc import code_pb2

from meshguard.authz.authorizer import Authorizer, Outcome
from meshguard.authz.checkrequest import InvalidRequest, to_attributes
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.metrics import DECISIONS, LATENCY
from meshguard.common.leangrpc import GrpcError, Handler

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
METADATA_NAMESPACE = "meshguard"
log = logging.getLogger("meshguard.authz.grpc")
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_LATENCY = LATENCY.labels("grpc")


def _header(key: str, value: str) -> Any:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
    )


def to_response(outcome: Outcome) -> Any:
    response = external_auth_pb2.CheckResponse()
    response.dynamic_metadata.update({METADATA_NAMESPACE: outcome.metadata()})
    authn = outcome.authn
    if outcome.allowed:
        response.status.code = code_pb2.OK
        ok = response.ok_response
        ok.headers.extend(_header(k, v) for k, v in authn.headers_to_set)
        set_names = {k for k, _ in authn.headers_to_set}
        ok.headers_to_remove.extend(h for h in authn.headers_to_remove if h not in set_names)
        ok.query_parameters_to_remove.extend(authn.params_to_remove)
        return response
    response.status.code = (
        code_pb2.UNAUTHENTICATED if outcome.status == 401 else code_pb2.PERMISSION_DENIED
    )
    denied = response.denied_response
    denied.status.code = outcome.status
    denied.body = outcome.body
    denied.headers.extend(_header(k, v) for k, v in outcome.response_headers)
    return response


class _ResponseCache:
    """Serialised CheckResponses by everything :func:`to_response` reads except per-request
    headers (a 401's ``www-authenticate`` names the request's URL: those are not kept)."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._bytes: dict[tuple[object, ...], bytes] = {}

    def get(self, outcome: Outcome) -> bytes:
        if outcome.response_headers:
            data: bytes = to_response(outcome).SerializeToString()
            return data
        authn = outcome.authn
        key = (
            outcome.allowed,
            outcome.status,
            outcome.reason,
            outcome.body,
            outcome.decision,
            authn.issuer,
            authn.headers_to_set,
            authn.headers_to_remove,
            authn.params_to_remove,
        )
        found = self._bytes.get(key)
        if found is None:
            found = to_response(outcome).SerializeToString()
            if len(self._bytes) >= self._limit:
                self._bytes.clear()
            self._bytes[key] = found
        return found


def invalid_response(message: str) -> Any:
    response = external_auth_pb2.CheckResponse()
    response.status.code = code_pb2.INVALID_ARGUMENT
    response.status.message = message
    response.denied_response.status.code = 400
    response.denied_response.body = "invalid authorization request"
    return response


class AuthorizationServicer:
    """``Check`` takes a parsed CheckRequest and answers serialised CheckResponse bytes."""

    def __init__(
        self, authorizer: Authorizer, decisions: DecisionLog, xff_trusted_hops: int
    ) -> None:
        self.authorizer = authorizer
        self.decisions = decisions
        self.xff_trusted_hops = xff_trusted_hops
        self._responses = _ResponseCache()

    async def Check(self, request: Any, context: grpc.aio.ServicerContext | None) -> bytes:
        started = time.perf_counter()
        try:
            attrs = to_attributes(request, xff_trusted_hops=self.xff_trusted_hops)
        except InvalidRequest as exc:
            DECISIONS.labels("deny", "invalid_request").inc()
            data: bytes = invalid_response(str(exc)).SerializeToString()
            return data
        outcome = await self.authorizer.check(attrs)
        elapsed = time.perf_counter() - started
        _LATENCY.observe(elapsed)
        self.decisions.record(attrs, outcome, elapsed)
        return self._responses.get(outcome)


METHOD_PATH = f"/{SERVICE_NAME}/Check"


def lean_methods(servicer: AuthorizationServicer) -> dict[str, Handler]:
    """The ``methods`` for :meth:`ServiceRuntime.add_lean_grpc` (raw bytes in and out)."""

    async def check(data: bytes) -> bytes:
        try:
            request = external_auth_pb2.CheckRequest.FromString(data)
        except Exception:  # protobuf's DecodeError is not typed
            raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad CheckRequest") from None
        return await servicer.Check(request, None)

    return {METHOD_PATH: check}


def _serialised(response: bytes) -> bytes:
    return response


def register(servicer: AuthorizationServicer) -> Any:
    """A ``register(server)`` for :meth:`ServiceRuntime.add_grpc`."""

    def add(server: grpc.aio.Server) -> None:
        check = grpc.unary_unary_rpc_method_handler(
            servicer.Check,
            request_deserializer=external_auth_pb2.CheckRequest.FromString,
            response_serializer=_serialised,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Check": check}),)
        )

    return add
