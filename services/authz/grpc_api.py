"""``envoy.service.auth.v3.Authorization/Check`` on grpc.aio: CheckRequest in, CheckResponse out."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from meshguard.authz.authorizer import Authorizer, Outcome
from meshguard.authz.checkrequest import InvalidRequest, to_attributes
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.metrics import DECISIONS, LATENCY

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


def invalid_response(message: str) -> Any:
    response = external_auth_pb2.CheckResponse()
    response.status.code = code_pb2.INVALID_ARGUMENT
    response.status.message = message
    response.denied_response.status.code = 400
    response.denied_response.body = "invalid authorization request"
    return response


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    def __init__(
        self, authorizer: Authorizer, decisions: DecisionLog, xff_trusted_hops: int
    ) -> None:
        self.authorizer = authorizer
        self.decisions = decisions
        self.xff_trusted_hops = xff_trusted_hops

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            attrs = to_attributes(request, xff_trusted_hops=self.xff_trusted_hops)
        except InvalidRequest as exc:
            DECISIONS.labels("deny", "invalid_request").inc()
            return invalid_response(str(exc))
        outcome = await self.authorizer.check(attrs)
        elapsed = time.perf_counter() - started
        _LATENCY.observe(elapsed)
        self.decisions.record(attrs, outcome, elapsed)
        return to_response(outcome)


def register(servicer: AuthorizationServicer) -> Any:
    """A ``register(server)`` for :meth:`ServiceRuntime.add_grpc`."""

    def add(server: grpc.aio.Server) -> None:
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server)

    return add
