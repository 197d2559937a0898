"""Hot reload under traffic: a client keeps calling a served process while its config directory
is rewritten in place, swapped the ConfigMap way (``..data`` symlink) and briefly broken; not one
call fails, and the last good config is the one enforced."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

from meshguard.common.netutil import free_port
from tests.integration.test_ratelimit_serve import http, wait_until

CONFIG = """
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: %d}
  - key: spare%d
    rate_limit: {unit: minute, requests_per_unit: 1}
"""
BROKEN = "domain: edge\ndescriptors:\n  - key: user\n    rate_limit: {unit: fortnight}\n"


def publish(root: Path, version: int, text: str) -> None:
    """Write a new ``..<version>`` directory and swap ``..data`` to it atomically."""
    target = root / f"..v{version}"
    target.mkdir()
    (target / "edge.yaml").write_text(text)
    link = root / "..data_tmp"
    link.symlink_to(target.name)
    os.replace(link, root / "..data")


@pytest.fixture
def configmap(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    root.mkdir()
    publish(root, 0, CONFIG % (1000, 0))
    (root / "edge.yaml").symlink_to("..data/edge.yaml")
    return root


@pytest.fixture
def ports(configmap: Path) -> Iterator[dict[str, int]]:
    ports = {"grpc": free_port(), "http": free_port(), "admin": free_port()}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "meshguard.cli", "ratelimit", "serve",
            "--config", str(configmap), "--backend", "memory", "--host", "127.0.0.1",
            "--grpc-port", str(ports["grpc"]), "--http-port", str(ports["http"]),
            "--admin-port", str(ports["admin"]),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: http(f"http://127.0.0.1:{ports['admin']}/readyz")[0] == 200)
        yield ports
    finally:
        process.terminate()
        process.wait(10)


class Traffic(threading.Thread):
    """Calls ShouldRateLimit back to back (bounded in count and time), recording every outcome."""

    def __init__(self, port: int, user: str) -> None:
        super().__init__(daemon=True)
        self.port, self.user = port, user
        self.stop = threading.Event()
        self.codes: list[int] = []
        self.errors: list[str] = []

    def run(self) -> None:
        message = rls_pb2.RateLimitRequest(domain="edge")
        message.descriptors.add().entries.add(key="user", value=self.user)
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = rls_pb2_grpc.RateLimitServiceStub(channel)
            while not self.stop.is_set() and len(self.codes) < 50_000:
                assert time.monotonic() < deadline
                try:
                    self.codes.append(stub.ShouldRateLimit(message, timeout=2).overall_code)
                except grpc.RpcError as exc:
                    self.errors.append(f"{exc.code()}: {exc.details()}")


def call(port: int, user: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        message = rls_pb2.RateLimitRequest(domain="edge")
        message.descriptors.add().entries.add(key="user", value=user)
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        return int(stub.ShouldRateLimit(message, timeout=5).overall_code)


def test_reload_under_traffic_fails_no_call(configmap: Path, ports: dict[str, int]) -> None:
    traffic = Traffic(ports["grpc"], "steady")
    traffic.start()
    try:
        for version in range(1, 13):
            if version % 4 == 0:
                publish(configmap, version, BROKEN)  # rejected: the last good config stays
            elif version % 2:
                publish(configmap, version, CONFIG % (1000 + version, version))
            else:
                (configmap / "..data" / "edge.yaml").write_text(CONFIG % (2000, version))
            time.sleep(0.3)
        publish(configmap, 99, CONFIG % (3, 99))
        time.sleep(1.0)
    finally:
        traffic.stop.set()
        traffic.join(30)
    assert traffic.errors == []
    assert len(traffic.codes) > 100
    ok, over = rls_pb2.RateLimitResponse.OK, rls_pb2.RateLimitResponse.OVER_LIMIT
    assert [call(ports["grpc"], "fresh") for _ in range(4)] == [ok, ok, ok, over]
    metrics = http(f"http://127.0.0.1:{ports['admin']}/metrics")[1]
    assert "ratelimit_service_config_load_error_total 3.0" in metrics
