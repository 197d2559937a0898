"""A lean asyncio server for unary gRPC over cleartext HTTP/2 (h2c with prior knowledge).

grpc.aio spends about 260 µs of CPU on a unary call that does nothing, more than the rate-limit
decision itself. Envoy's ``envoy_grpc`` clusters and grpcio's insecure channels only need unary
calls over h2c, which this server does in a fraction of that: handlers take and return the raw
message bytes (callers parse protobuf however they like) and raise :class:`GrpcError` for a
status. Unknown methods answer ``UNIMPLEMENTED``; a handler's exception answers ``UNKNOWN``.

``grpc.health.v1.Health/Check`` is built in (``SERVING`` for ``""`` and the listed services,
``NOT_SERVING`` while draining) so Envoy and Kubernetes health checks work. No reflection, no
streaming, no TLS: use grpc.aio (``ServiceRuntime.add_grpc``) where those are needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

import grpc
from grpc_health.v1 import health_pb2

from meshguard.common.leangrpc_connection import ConnectionOptions, GrpcConnection, Handler
from meshguard.common.leangrpc_wire import GrpcError

__all__ = ["GrpcError", "Handler", "HealthCheck", "LeanGrpcServer"]

HEALTH_CHECK = "/grpc.health.v1.Health/Check"

_SERVING: bytes = health_pb2.HealthCheckResponse(
    status=health_pb2.HealthCheckResponse.SERVING
).SerializeToString()
_NOT_SERVING: bytes = health_pb2.HealthCheckResponse(
    status=health_pb2.HealthCheckResponse.NOT_SERVING
).SerializeToString()


class HealthCheck:
    """``grpc.health.v1.Health/Check`` for the server's services (``""`` is the server)."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self.services = frozenset(("", *service_names))
        self.serving = True

    async def __call__(self, request: bytes) -> bytes:
        try:
            service: str = health_pb2.HealthCheckRequest.FromString(request).service
        except Exception:  # protobuf's DecodeError is not typed
            raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad HealthCheckRequest") from None
        if service not in self.services:
            raise GrpcError(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return _SERVING if self.serving else _NOT_SERVING


class LeanGrpcServer:
    """Serves ``methods`` (``"/package.Service/Method"`` → handler) on ``host:port``."""

    def __init__(
        self,
        methods: Mapping[str, Handler],
        service_names: Iterable[str] = (),
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        max_receive_message_length: int = 4 * 1024 * 1024,
        max_concurrent_streams: int = 1000,
    ) -> None:
        self.host = host
        self.port = port
        self.health = HealthCheck(service_names)
        handlers = {path.encode(): handler for path, handler in methods.items()}
        handlers.setdefault(HEALTH_CHECK.encode(), self.health)
        self._options = ConnectionOptions(
            handlers,
            max_receive_message_length=max_receive_message_length,
            max_concurrent_streams=max_concurrent_streams,
        )
        self._server: asyncio.Server | None = None
        self._connections: set[GrpcConnection] = set()

    def _connection(self) -> GrpcConnection:
        connection = GrpcConnection(self._options, self._connections.discard)
        self._connections.add(connection)
        return connection

    async def start(self) -> None:
        """Listen; ``port`` is the bound port afterwards (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, send GOAWAY, wait up to ``grace`` seconds for in-flight calls,
        then close whatever is left."""
        self.health.serving = False
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.drain()
        if grace:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while any(c.active_streams for c in self._connections) and loop.time() < deadline:
                await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
