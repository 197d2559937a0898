"""Process plumbing every meshguard service shares.

One :class:`ServiceRuntime` per process owns the gRPC servers (with the standard health and
reflection services), lean unary gRPC servers (:mod:`meshguard.common.leangrpc`), extra aiohttp
apps, the admin app (``/healthz``, ``/readyz``, ``/metrics``, ``/config``) and the config stores'
watchers. On SIGTERM it turns readiness off, lets in-flight calls finish within the grace period,
then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import ssl
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from meshguard.common.leangrpc import Handler, LeanGrpcServer

log = logging.getLogger("meshguard.server")

GrpcRegister = Callable[[grpc.aio.Server], None]
BackgroundTask = Callable[[], Coroutine[Any, Any, None]]


class DescribedStore(Protocol):
    """What the runtime needs of a config store (see :mod:`meshguard.common.configstore`)."""

    name: str

    @property
    def loaded(self) -> bool: ...

    def describe(self) -> dict[str, object]: ...

    async def watch(self) -> None: ...


class _GrpcEndpoint:
    def __init__(
        self,
        port: int,
        register: GrpcRegister,
        service_names: Sequence[str],
        credentials: grpc.ServerCredentials | None,
    ) -> None:
        self.port = port
        self.register = register
        self.service_names = tuple(service_names)
        self.credentials = credentials
        self.server: grpc.aio.Server | None = None
        self.health = HealthServicer()


class ManagedServer(Protocol):
    """A server the runtime starts and drains that is neither grpc.aio nor aiohttp (e.g. a lean
    asyncio protocol): ``port`` is the bound port once ``start`` returned."""

    @property
    def port(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish within ``grace`` seconds, close."""
        ...


class _LeanGrpcEndpoint:
    def __init__(self, port: int, methods: Mapping[str, Handler], service_names: Sequence[str]):
        self.port = port
        self.methods = methods
        self.service_names = tuple(service_names)
        self.server: LeanGrpcServer | None = None


class _HttpEndpoint:
    def __init__(self, app: web.Application, port: int, ssl_context: ssl.SSLContext | None):
        self.app = app
        self.port = port
        self.ssl_context = ssl_context
        self.runner: web.AppRunner | None = None


class ServiceRuntime:
    """Starts, serves and drains one service process."""

    def __init__(
        self,
        name: str,
        *,
        admin_port: int,
        host: str = "0.0.0.0",
        grace_period: float = 10.0,
    ) -> None:
        self.name = name
        self.host = host
        self.grace_period = grace_period
        self.ready = False
        self.admin_app = web.Application()
        self.admin_app.router.add_get("/healthz", self._healthz)
        self.admin_app.router.add_get("/readyz", self._readyz)
        self.admin_app.router.add_get("/metrics", self._metrics)
        self.admin_app.router.add_get("/config", self._config)
        self._grpc: list[_GrpcEndpoint] = []
        self._lean: list[_LeanGrpcEndpoint] = []
        self._http: list[_HttpEndpoint] = [_HttpEndpoint(self.admin_app, admin_port, None)]
        self._managed_http: list[ManagedServer] = []
        self._stores: list[DescribedStore] = []
        self._background: list[BackgroundTask] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    # -- assembly ---------------------------------------------------------------------------

    def add_grpc(
        self,
        port: int,
        register: GrpcRegister,
        service_names: Sequence[str],
        *,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        """Serve the services ``register`` adds, with health and reflection, on ``port``."""
        self._grpc.append(_GrpcEndpoint(port, register, service_names, credentials))

    def add_lean_grpc(
        self, port: int, methods: Mapping[str, Handler], service_names: Sequence[str]
    ) -> None:
        """Serve unary ``methods`` ("/pkg.Service/Method" → raw-bytes handler) and the health
        Check on ``port`` with the lean h2c server: no reflection, streaming or TLS, a fraction
        of grpc.aio's CPU per call."""
        self._lean.append(_LeanGrpcEndpoint(port, methods, service_names))

    def add_http(
        self, app: web.Application, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._http.append(_HttpEndpoint(app, port, ssl_context))

    def add_http_server(self, server: ManagedServer) -> None:
        """Serve an HTTP server of its own (listed in :attr:`http_ports`, drained on stop)."""
        self._managed_http.append(server)

    def add_store(self, store: DescribedStore) -> None:
        """Expose ``store`` on ``/config``, gate readiness on it and watch it while running."""
        self._stores.append(store)
        self._background.append(store.watch)

    def add_background(self, task: BackgroundTask) -> None:
        """Run ``task`` for the life of the process (cancelled on stop)."""
        self._background.append(task)

    # -- bound addresses ----------------------------------------------------------------------

    @property
    def grpc_ports(self) -> list[int]:
        """Bound gRPC ports: grpc.aio endpoints first, then lean ones, each in order added."""
        return [e.port for e in self._grpc] + [e.port for e in self._lean]

    @property
    def http_ports(self) -> list[int]:
        """Ports of the apps added with :meth:`add_http`, then of the servers added with
        :meth:`add_http_server`, each in order (admin excluded)."""
        return [e.port for e in self._http[1:]] + [s.port for s in self._managed_http]

    @property
    def admin_port(self) -> int:
        return self._http[0].port

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        for endpoint in self._grpc:
            await self._start_grpc(endpoint)
        for lean in self._lean:
            lean.server = LeanGrpcServer(
                lean.methods, lean.service_names, host=self.host, port=lean.port
            )
            await lean.server.start()
            lean.port = lean.server.port
        for http in self._http:
            await self._start_http(http)
        for managed in self._managed_http:
            await managed.start()
        self._tasks = [asyncio.create_task(task()) for task in self._background]
        self.ready = True
        log.info(
            "serving",
            extra={
                "service": self.name,
                "grpc_ports": self.grpc_ports,
                "http_ports": self.http_ports,
                "admin_port": self.admin_port,
            },
        )

    async def _start_grpc(self, endpoint: _GrpcEndpoint) -> None:
        server = grpc.aio.server()
        endpoint.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(endpoint.health, server)
        for service in endpoint.service_names:
            await endpoint.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            (*endpoint.service_names, "grpc.health.v1.Health", reflection.SERVICE_NAME), server
        )
        address = f"{self.host}:{endpoint.port}"
        if endpoint.credentials is None:
            endpoint.port = server.add_insecure_port(address)
        else:
            endpoint.port = server.add_secure_port(address, endpoint.credentials)
        await server.start()
        endpoint.server = server

    async def _start_http(self, http: _HttpEndpoint) -> None:
        runner = web.AppRunner(http.app, access_log=None, shutdown_timeout=self.grace_period)
        await runner.setup()
        site = web.TCPSite(runner, self.host, http.port, ssl_context=http.ssl_context)
        await site.start()
        http.runner = runner
        sockets = [s for s in runner.addresses if isinstance(s, tuple)]
        if sockets:
            http.port = int(sockets[0][1])

    async def stop(self) -> None:
        """Readiness off, in-flight calls drained (up to the grace period), then everything
        closed. The admin app goes last so probes see NOT READY while draining."""
        self.ready = False
        for endpoint in self._grpc:
            await endpoint.health.enter_graceful_shutdown()
        await asyncio.gather(
            *(e.server.stop(self.grace_period) for e in self._grpc if e.server is not None),
            *(e.server.stop(self.grace_period) for e in self._lean if e.server is not None),
            *(managed.stop(self.grace_period) for managed in self._managed_http),
        )
        for http in reversed(self._http):
            if http.runner is not None:
                await http.runner.cleanup()
                http.runner = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        log.info("stopped", extra={"service": self.name})

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain and stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stopping.wait()
            log.info("shutdown requested; draining", extra={"service": self.name})
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    # -- admin handlers -----------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready and all(s.loaded for s in self._stores):
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _config(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe_config())

    def describe_config(self) -> dict[str, Any]:
        """The active configuration: one ``version`` that changes whenever any store's does."""
        stores = [s.describe() for s in self._stores]
        versions = [str(s.get("version", "")) for s in stores]
        if len(versions) == 1:
            version = versions[0]
        else:
            version = hashlib.sha256("\0".join(versions).encode()).hexdigest()[:16]
        return {"service": self.name, "version": version, "stores": stores}
