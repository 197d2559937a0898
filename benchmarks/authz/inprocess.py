"""In-process CPU per decision of each flavour: the number each code-level step is judged by.

``python -m benchmarks.authz.inprocess`` (a few seconds). Times what the server does for one
check besides the socket work, on the benchmark's policy set and request (valid RS256 JWT,
allowed after every DENY rule was tried): HTTP = request adaptation from the parsed header
list, authorization and the response bytes; gRPC = ``CheckRequest`` parsing, adaptation,
authorization and the serialised ``CheckResponse``. Best of ``--repeat`` rounds of ``--loops``
checks on ``time.process_time``, so another job on the machine inflates no number.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from envoy.service.auth.v3 import external_auth_pb2

from benchmarks.authz import workload
from meshguard.authz import grpc_api, http_api, loader
from meshguard.authz.compiler import EngineOptions
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.jwks import JwksCache
from meshguard.authz.runtime import build_authorizer
from meshguard.common.configstore import ConfigStore

PREFIX = "/check"


def _finished(coro: Coroutine[Any, Any, Any]) -> Any:
    """The result of a check that never waits (every check here hits the caches)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the check suspended: a cache was cold")


def _raw_headers(token: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:10000"),
        (b"user-agent", b"wrk"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", b"0b1c2d3e-aaaa-bbbb-cccc-123456789012"),
        (b"x-meshguard-namespace", workload.NAMESPACE.encode()),
        (b"x-meshguard-labels", workload.LABELS.encode()),
        (b"content-length", b"0"),
    ]


def _check_request(token: str) -> bytes:
    request = external_auth_pb2.CheckRequest()
    attrs = request.attributes
    attrs.context_extensions["namespace"] = workload.NAMESPACE
    attrs.context_extensions["labels"] = workload.LABELS
    attrs.source.address.socket_address.address = "127.0.0.1"
    attrs.source.address.socket_address.port_value = 40000
    attrs.destination.address.socket_address.address = "127.0.0.1"
    attrs.destination.address.socket_address.port_value = 10000
    http = attrs.request.http
    http.method, http.path, http.host, http.scheme = "GET", workload.REQUEST_PATH, "a", "http"
    for key, value in (
        (":authority", "127.0.0.1:10000"),
        (":method", "GET"),
        (":path", workload.REQUEST_PATH),
        (":scheme", "http"),
        ("authorization", f"Bearer {token}"),
        ("user-agent", "wrk"),
        ("x-request-id", "0b1c2d3e-aaaa-bbbb-cccc-123456789012"),
    ):
        http.headers[key] = value
    data: bytes = request.SerializeToString()
    return data


def checks(folder: Path) -> dict[str, Callable[[], object]]:
    """One no-argument call per flavour, each doing a whole check."""
    signer = workload.Signer.generate()
    (folder / "policies.yaml").write_text(workload.yaml_text(signer))
    store = ConfigStore("bench", (str(folder),), loader.compiler(EngineOptions()))
    store.load()
    authorizer = build_authorizer(store, JwksCache())
    quiet = DecisionLog(allow_rate=0.0, deny_rate=0.0)
    http = http_api.HttpAuthorization(authorizer, quiet, path_prefix=PREFIX)
    servicer = grpc_api.AuthorizationServicer(authorizer, quiet, 0)
    token = signer.token()
    raw = _raw_headers(token)
    target = PREFIX + workload.REQUEST_PATH
    data = _check_request(token)
    parse = external_auth_pb2.CheckRequest.FromString
    return {
        "http": lambda: _finished(http.respond("GET", target, raw, True)),
        "grpc": lambda: _finished(servicer.Check(parse(data), None)),
    }


def per_check_us(call: Callable[[], object], loops: int, repeat: int) -> float:
    call()  # warm the verified-token and workload caches
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        for _ in range(loops):
            call()
        best = min(best, time.process_time() - began)
    return best * 1e6 / loops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.authz.inprocess")
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshguard-authz-inprocess-") as tmp:
        for name, call in checks(Path(tmp)).items():
            print(f"{name:<5} {per_check_us(call, args.loops, args.repeat):6.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
