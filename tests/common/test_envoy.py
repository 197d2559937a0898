from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web

from meshguard.common import envoy as cfg
from meshguard.common.envoy import EnvoyError, EnvoyProcess, envoy_binary
from meshguard.common.netutil import port_open


def get(port: int, path: str = "/") -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status, response.read().decode()


def hello_bootstrap() -> cfg.JsonObject:
    listener = cfg.http_listener("hello", routes=[cfg.direct_response_route(200, "hello")])
    return cfg.bootstrap(listeners=[listener])


def test_envoy_binary_is_the_wheels_envoy_140() -> None:
    binary = envoy_binary()
    assert os.access(binary, os.X_OK)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert "/1.40." in version.stdout


def test_config_helpers_produce_a_bootstrap_envoy_accepts(tmp_path: Path) -> None:
    listener = cfg.http_listener(
        "ingress",
        routes=[cfg.cluster_route("backend", prefix="/api", timeout=2.5)],
        stat_prefix="edge",
    )
    config = cfg.bootstrap(
        listeners=[listener],
        clusters=[cfg.grpc_cluster("authz", 9191), cfg.static_cluster("backend", 8080)],
    )
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", path, "--disable-hot-restart"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert config["static_resources"]["clusters"][0]["typed_extension_protocol_options"]


def test_start_serves_the_config_and_stop_ends_the_process() -> None:
    process = EnvoyProcess(hello_bootstrap()).start()
    try:
        port = process.listener_port("hello")
        admin_port = int(process.admin_url.rsplit(":", 1)[1])
        assert get(port) == (200, "hello")
        assert process.admin_get("/ready").strip() == "LIVE"
        pid, directory = process.pid, process.directory
    finally:
        process.stop()
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_open(port)
    assert not port_open(admin_port)
    assert not directory.exists()
    process.stop()  # idempotent


async def test_async_context_manager_and_stats() -> None:
    async with EnvoyProcess(hello_bootstrap()) as process:
        port = process.listener_port("hello")
        for _ in range(3):
            assert get(port) == (200, "hello")
        stats = process.stats()
        assert stats["http.hello.downstream_rq_2xx"] == 3
        assert process.stats(r"^http\.hello\.downstream_rq_2xx$") == {
            "http.hello.downstream_rq_2xx": 3
        }
        assert process.listener_addresses() == {"hello": ("127.0.0.1", port)}
    assert not process.running


async def test_routes_to_an_upstream_cluster() -> None:
    app = web.Application()

    async def upstream(request: web.Request) -> web.Response:
        return web.Response(text=f"upstream saw {request.path}")

    app.router.add_get("/{tail:.*}", upstream)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        upstream_port = runner.addresses[0][1]
        config = cfg.bootstrap(
            listeners=[cfg.http_listener("edge", routes=[cfg.cluster_route("app", timeout=5)])],
            clusters=[cfg.static_cluster("app", upstream_port)],
        )
        async with EnvoyProcess(config) as process:
            port = process.listener_port("edge")
            # A blocking client in a thread: the upstream runs on this event loop.
            assert await asyncio.to_thread(get, port, "/x/y") == (200, "upstream saw /x/y")
            assert process.stats()["cluster.app.upstream_rq_completed"] == 1
    finally:
        await runner.cleanup()


def test_a_config_envoy_rejects_fails_with_its_log() -> None:
    broken = hello_bootstrap()
    broken["static_resources"]["clusters"] = [{"name": "x", "type": "NOT_A_TYPE"}]
    process = EnvoyProcess(broken)
    with pytest.raises(
        EnvoyError, match=r"Envoy exited with code \d+ while starting:\n(.|\n)*NOT_A_TYPE"
    ):
        process.start()
    assert not process.running


def test_startup_timeout_names_the_wait_and_stops_envoy() -> None:
    process = EnvoyProcess(hello_bootstrap(), startup_timeout=0.0)
    with pytest.raises(EnvoyError, match="not LIVE after 0s"):
        process.start()
    assert not process.running


def test_inspecting_a_stopped_envoy_is_an_error() -> None:
    process = EnvoyProcess(hello_bootstrap())
    with pytest.raises(EnvoyError, match="not running"):
        _ = process.admin_url
    assert process.log_tail() == "<no log>"


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    missing = tmp_path / "no-envoy"
    process = EnvoyProcess(hello_bootstrap(), binary=missing)
    with pytest.raises(EnvoyError, match=f"cannot run Envoy {missing}: No such file"):
        process.start()
    assert not process.running
    assert list(tmp_path.iterdir()) == [], "the private directory is removed"
