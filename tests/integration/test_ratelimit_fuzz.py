"""Hypothesis-generated ShouldRateLimit requests against a served process: whatever arrives, the
answer is a well-formed response or a deliberate gRPC status, never a crash."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshguard.common.netutil import free_port
from tests.integration.test_ratelimit_serve import http, wait_until

CONFIG = """
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 3}
  - key: path
    value: "/api/*"
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: gcra
    rate_limit: {unit: second, requests_per_unit: 2, algorithm: gcra}
  - key: both
    rate_limits:
      - {unit: second, requests_per_unit: 1, algorithm: sliding_window}
      - {unit: hour, requests_per_unit: 0}
  - key: free
    rate_limit: {unlimited: true, name: free}
  - key: tenant
    descriptors:
      - key: user
        rate_limit: {unit: day, requests_per_unit: 10, name: daily, replaces: [{name: free}]}
"""
KEYS = ["user", "path", "gcra", "both", "free", "tenant", "", "x"]
OK, OVER = rls_pb2.RateLimitResponse.OK, rls_pb2.RateLimitResponse.OVER_LIMIT


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rls_pb2_grpc.RateLimitServiceStub]:
    config_dir = tmp_path_factory.mktemp("fuzz")
    (config_dir / "edge.yaml").write_text(CONFIG)
    grpc_port, admin_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "meshguard.cli", "ratelimit", "serve",
            "--config", str(config_dir), "--backend", "memory", "--host", "127.0.0.1",
            "--grpc-port", str(grpc_port), "--http-port", str(free_port()),
            "--admin-port", str(admin_port), "--response-headers", "--dynamic-metadata",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: http(f"http://127.0.0.1:{admin_port}/readyz")[0] == 200)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            yield rls_pb2_grpc.RateLimitServiceStub(channel)
        assert process.poll() is None, "the service died"
    finally:
        process.terminate()
        process.wait(10)


texts = st.one_of(st.sampled_from([*KEYS, "/api/v1", "a_b", "*"]), st.text(max_size=12))
entries = st.lists(st.tuples(texts, texts), max_size=3)
descriptors = st.lists(
    st.tuples(
        entries,
        st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 9)),  # limit override
        st.none() | st.integers(0, 2**64 - 1),  # per-descriptor hits_addend
    ),
    max_size=4,
)
requests = st.tuples(st.sampled_from(["edge", "", "other"]) | st.text(max_size=5), descriptors)


def build(
    domain: str, raw: list[tuple[list[tuple[str, str]], object, object]], addend: int
) -> rls_pb2.RateLimitRequest:
    message = rls_pb2.RateLimitRequest(domain=domain, hits_addend=addend)
    for pairs, limit, hits in raw:
        descriptor = message.descriptors.add()
        for key, value in pairs:
            descriptor.entries.add(key=key, value=value)
        if isinstance(limit, tuple):
            descriptor.limit.requests_per_unit, descriptor.limit.unit = limit
        if isinstance(hits, int):
            descriptor.hits_addend.value = hits
    return message


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests, addend=st.sampled_from([0, 1, 7, 2**32 - 1]))
def test_any_request_gets_a_response_or_a_proper_status(
    stub: rls_pb2_grpc.RateLimitServiceStub,
    request: tuple[str, list[tuple[list[tuple[str, str]], object, object]]],
    addend: int,
) -> None:
    domain, raw = request
    try:
        response = stub.ShouldRateLimit(build(domain, raw, addend), timeout=5)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNKNOWN, exc
        details = exc.details() or ""
        assert not details.startswith("Unexpected"), details  # an unhandled exception
        assert not domain or not raw or "override has an invalid unit" in details, details
        return
    assert domain and raw
    assert response.overall_code in (OK, OVER)
    assert len(response.statuses) == len(raw)
    for status in response.statuses:
        assert status.code in (OK, OVER)
        assert 0 <= status.limit_remaining <= 2**32 - 1
