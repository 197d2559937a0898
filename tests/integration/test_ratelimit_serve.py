"""``meshguard ratelimit serve`` as a real process: gRPC, /json, /config, /metrics, hot reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

from meshguard.common.netutil import free_port

CONFIG = """
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: %d}
"""


def http(url: str, body: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(params=["lean", "grpcio"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "edge.yaml").write_text(CONFIG % 2)
    ports = {"grpc": free_port(), "http": free_port(), "admin": free_port()}
    env = dict(os.environ, GRPC_PORT=str(ports["grpc"]), PORT=str(ports["http"]))
    process = subprocess.Popen(
        [
            sys.executable, "-m", "meshguard.cli", "ratelimit", "serve",
            "--config", str(config_dir), "--backend", "memory", "--host", "127.0.0.1",
            "--admin-port", str(ports["admin"]), "--grpc-server", request.param,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(lambda: http(f"http://127.0.0.1:{ports['admin']}/readyz")[0] == 200)
        yield {"ports": ports, "config_dir": config_dir}
    finally:
        process.terminate()
        process.wait(10)


def grpc_call(port: int, user: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        message = rls_pb2.RateLimitRequest(domain="edge")
        message.descriptors.add().entries.add(key="user", value=user)
        return int(stub.ShouldRateLimit(message, timeout=5).overall_code)


def test_serve_grpc_json_metrics_and_hot_reload(served: dict[str, object]) -> None:
    ports = served["ports"]
    assert isinstance(ports, dict)
    ok, over = rls_pb2.RateLimitResponse.OK, rls_pb2.RateLimitResponse.OVER_LIMIT
    assert [grpc_call(ports["grpc"], "a") for _ in range(3)] == [ok, ok, over]

    body = json.dumps(
        {"domain": "edge", "descriptors": [{"entries": [{"key": "user", "value": "b"}]}]}
    )
    status, text = http(f"http://127.0.0.1:{ports['http']}/json", body.encode())
    assert status == 200
    reply = json.loads(text)
    assert reply["overallCode"] == "OK"
    assert reply["statuses"][0]["limitRemaining"] == 1
    assert reply["statuses"][0]["durationUntilReset"].endswith("s")
    assert http(f"http://127.0.0.1:{ports['http']}/json", b"{not json")[0] == 400
    assert (
        "edge.user: unit=MINUTE requests_per_unit=2"
        in http(f"http://127.0.0.1:{ports['http']}/rlconfig")[1]
    )

    metrics = http(f"http://127.0.0.1:{ports['admin']}/metrics")[1]
    assert (
        'ratelimit_service_rate_limit_over_limit_total{domain="edge",key1="user",key2=""} 1.0'
        in metrics
    )

    admin_config = f"http://127.0.0.1:{ports['admin']}/config"
    version = json.loads(http(admin_config)[1])["version"]
    config_dir = served["config_dir"]
    assert isinstance(config_dir, Path)
    (config_dir / "edge.yaml").write_text(
        "domain: edge\ndescriptors:\n  - key: user\n    ratelimit: {}\n"
    )
    time.sleep(1.0)
    assert json.loads(http(admin_config)[1])["version"] == version  # rejected: old one stays
    assert grpc_call(ports["grpc"], "c") == ok
    (config_dir / "edge.yaml").write_text(CONFIG % 1)
    wait_until(lambda: json.loads(http(admin_config)[1])["version"] != version)
    assert [grpc_call(ports["grpc"], "d") for _ in range(2)] == [ok, over]
