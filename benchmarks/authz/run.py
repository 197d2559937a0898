"""Envoy ext_authz with meshguard vs. Envoy alone, Envoy's native filters and a do-nothing server.

``python -m benchmarks.authz.run`` (about 3 minutes; ``--quick`` for a 30-second smoke run).
One Envoy (``--concurrency 1``) carries one listener per variant, all answering with a direct
response, so the only difference between variants is the filter chain:

(a) no filter, (b) native jwt_authn + RBAC, (c) ext_authz gRPC → ``meshguard authz serve``,
(d) ext_authz HTTP → the same meshguard process, (e) ext_authz gRPC → a do-nothing server.

meshguard and the do-nothing server are subprocesses, so their CPU comes from /proc. Envoy's
ext_authz counters are read around every run: a time-out or error would otherwise look like
speed. Results go to the ``authz`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from benchmarks import harness
from benchmarks.authz import workload
from meshguard.common import envoy as cfg
from meshguard.common.netutil import free_port, wait_for_port

_EXT_AUTHZ = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
_PER_ROUTE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
AUTHZ_TIMEOUT = "1s"
VARIANTS = {
    "a": "Envoy alone (direct response)",
    "b": "Envoy jwt_authn + RBAC (native)",
    "c": "Envoy + meshguard gRPC",
    "d": "Envoy + meshguard HTTP",
    "e": "Envoy + do-nothing gRPC (ceiling)",
}
HISTORY = Path(__file__).with_name("history.md")  # hand-kept before/after of each optimisation
_COUNTERS = ("ok", "denied", "error", "failure_mode_allowed")


@dataclasses.dataclass(frozen=True, slots=True)
class Measured:
    variant: str
    load: harness.LoadResult
    authz_us: float  # CPU µs per decision of the authorizer process (nan when none)
    envoy_us: float  # Envoy CPU µs per request
    counters: dict[str, int]


# --- processes -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ports:
    grpc: int
    http: int
    admin: int
    null: int


def _meshguard_args(folder: Path, ports: Ports, extra: Sequence[str]) -> list[str]:
    script = Path(sys.executable).with_name("meshguard")
    return [
        str(script), "authz", "serve",
        "--policies", str(folder / "policies.yaml"),
        "--host", "127.0.0.1",
        "--grpc-port", str(ports.grpc),
        "--http-port", str(ports.http),
        "--http-path-prefix", "/check",
        "--admin-port", str(ports.admin),
        "--log-level", "warning",
        *extra,
    ]  # fmt: skip


# --- Envoy configuration -------------------------------------------------------------------


def _route(context: bool) -> cfg.JsonObject:
    route = cfg.direct_response_route(200, "ok")
    if context:
        route["typed_per_filter_config"] = {
            "envoy.filters.http.ext_authz": cfg.typed(
                _PER_ROUTE,
                check_settings={
                    "context_extensions": {
                        "namespace": workload.NAMESPACE,
                        "labels": workload.LABELS,
                    }
                },
            )
        }
    return route


def _grpc_filter(cluster: str) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": cfg.typed(
            _EXT_AUTHZ,
            grpc_service={"envoy_grpc": {"cluster_name": cluster}, "timeout": AUTHZ_TIMEOUT},
            transport_api_version="V3",
            failure_mode_allow=False,
        ),
    }


def _http_filter(port: int) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": cfg.typed(
            _EXT_AUTHZ,
            transport_api_version="V3",
            failure_mode_allow=False,
            http_service={
                "server_uri": {
                    "uri": f"http://127.0.0.1:{port}",
                    "cluster": "meshguard_http",
                    "timeout": AUTHZ_TIMEOUT,
                },
                "path_prefix": "/check",
                "authorization_request": {
                    "headers_to_add": [
                        {"key": "x-meshguard-namespace", "value": workload.NAMESPACE},
                        {"key": "x-meshguard-labels", "value": workload.LABELS},
                    ]
                },
                "authorization_response": {
                    "allowed_upstream_headers": {
                        "patterns": [{"exact": "x-envoy-auth-headers-to-remove"}]
                    }
                },
            },
            allowed_headers={"patterns": [{"exact": "x-block"}, {"exact": "x-forwarded-for"}]},
        ),
    }


def envoy_config(signer: workload.Signer, ports: Ports) -> cfg.JsonObject:
    listeners = [
        cfg.http_listener("a", routes=[_route(False)]),
        cfg.http_listener(
            "b", routes=[_route(False)], http_filters=workload.native_filters(signer)
        ),
        cfg.http_listener(
            "c", routes=[_route(True)], http_filters=[_grpc_filter("meshguard_grpc")]
        ),
        cfg.http_listener("d", routes=[_route(False)], http_filters=[_http_filter(ports.http)]),
        cfg.http_listener("e", routes=[_route(True)], http_filters=[_grpc_filter("null_grpc")]),
    ]
    clusters = [
        cfg.grpc_cluster("meshguard_grpc", ports.grpc),
        cfg.static_cluster("meshguard_http", ports.http),
        cfg.grpc_cluster("null_grpc", ports.null),
    ]
    return cfg.bootstrap(listeners=listeners, clusters=clusters)


# --- measuring -----------------------------------------------------------------------------


def _counters(proxy: cfg.EnvoyProcess, variant: str) -> dict[str, int]:
    stats = proxy.stats(rf"^http\.{variant}\.ext_authz\.")
    return {name: stats.get(f"http.{variant}.ext_authz.{name}", 0) for name in _COUNTERS}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


class Bench:
    def __init__(self, proxy: cfg.EnvoyProcess, authz_pid: dict[str, int], token: str) -> None:
        self.proxy = proxy
        self.authz_pid = authz_pid
        self.headers = {"authorization": f"Bearer {token}"}

    def status(self, variant: str, path: str, token: bool = True) -> int:
        url = f"http://127.0.0.1:{self.proxy.listener_port(variant)}{path}"
        request = urllib.request.Request(url, headers=self.headers if token else {})
        try:
            with urllib.request.urlopen(request, timeout=5.0) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def check_rules(self, variant: str) -> None:
        """Refuse to measure a variant that does not enforce the rules (or the token)."""
        expected = {
            (workload.REQUEST_PATH, True): 200,
            ("/internal/x", True): 200 if variant in "ae" else 403,
            (workload.REQUEST_PATH, False): 200 if variant in "ae" else 403,
        }
        seen = {key: self.status(variant, *key) for key in expected}
        if seen != expected:
            raise SystemExit(f"variant {variant} does not behave as configured: {seen}")

    def url(self, variant: str) -> str:
        return f"http://127.0.0.1:{self.proxy.listener_port(variant)}{workload.REQUEST_PATH}"

    def measure(self, variant: str, load: object) -> Measured:
        """Run ``load`` (a no-argument callable returning a LoadResult) and account CPU."""
        pid = self.authz_pid.get(variant)
        authz_cpu = harness.ProcessCpu(pid) if pid else None
        envoy_cpu = harness.ProcessCpu(self.proxy.pid)
        before = _counters(self.proxy, variant)
        if authz_cpu:
            authz_cpu.start()
        envoy_cpu.start()
        result: harness.LoadResult = load()  # type: ignore[operator]
        envoy_cpu.stop()
        if authz_cpu:
            authz_cpu.stop()
        counters = _delta(_counters(self.proxy, variant), before)
        decisions = sum(counters.values()) or result.requests
        return Measured(
            variant,
            result,
            authz_cpu.micros_per(decisions) if authz_cpu else float("nan"),
            envoy_cpu.micros_per(result.requests),
            counters,
        )

    def closed(self, variant: str, connections: int, seconds: float) -> Measured:
        return self.measure(
            variant,
            lambda: harness.wrk(
                f"{variant} c{connections}",
                self.url(variant),
                connections=connections,
                seconds=seconds,
                headers=self.headers,
            ),
        )

    def fixed(self, variant: str, rate: float, seconds: float) -> Measured:
        port = self.proxy.listener_port(variant)
        return self.measure(
            variant,
            lambda: asyncio.run(
                harness.fixed_rate(
                    f"{variant} {rate:g} rps",
                    "127.0.0.1",
                    port,
                    workload.REQUEST_PATH,
                    rate=rate,
                    seconds=seconds,
                    headers=self.headers,
                )
            ),
        )


# --- reporting -----------------------------------------------------------------------------


def _median_of(runs: Sequence[Measured]) -> Measured:
    """The run with the median throughput (keeps one run's numbers together)."""
    ordered = sorted(runs, key=lambda m: m.load.rps)
    return ordered[len(ordered) // 2]


def _problems(m: Measured) -> str:
    bad = {k: v for k, v in m.counters.items() if k != "ok" and v}
    if m.load.non_2xx:
        bad["non_2xx"] = m.load.non_2xx
    if m.load.errors:
        bad["socket_errors"] = m.load.errors
    return ", ".join(f"{k} {v}" for k, v in bad.items()) or "none"


def _us(value: float) -> object:
    return "—" if value != value else round(value)


def _line(label: str, m: Measured) -> str:
    return (
        f"{label}: {m.load.rps:,.0f} rps, p50 {m.load.p50_ms:.2f} ms, p99 {m.load.p99_ms:.2f} ms, "
        f"authz {_us(m.authz_us)} µs/decision, Envoy {_us(m.envoy_us)} µs/req [{_problems(m)}]"
    )


def report(
    closed: dict[tuple[str, int], list[Measured]],
    fixed: dict[str, list[Measured]],
    args: argparse.Namespace,
    machine: str,
) -> str:
    rows = []
    for (variant, conns), runs in sorted(closed.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = _median_of(runs)
        rows.append((
            f"({variant}) {VARIANTS[variant]}", conns, m.load.rps, m.load.p50_ms, m.load.p99_ms,
            _us(m.authz_us), _us(m.envoy_us), _problems(m),
        ))  # fmt: skip
    closed_table = harness.table(
        ["variant", "conns", "rps", "p50 ms", "p99 ms", "authz CPU µs/decision",
         "Envoy CPU µs/req", "errors / non-OK"],
        rows,
    )  # fmt: skip
    fixed_rows = []
    for variant, runs in sorted(fixed.items()):
        m = _median_of(runs)
        fixed_rows.append((
            f"({variant}) {VARIANTS[variant]}", args.rate, m.load.rps, m.load.p50_ms, m.load.p99_ms,
            _us(m.authz_us), _problems(m),
        ))  # fmt: skip
    fixed_table = harness.table(
        ["variant", "offered rps", "achieved rps", "p50 ms", "p99 ms", "authz CPU µs/decision",
         "errors / non-OK"],
        fixed_rows,
    )  # fmt: skip
    ratios = harness.ratio_lines(
        {
            conns: {
                v: _median_of(closed[(v, conns)]).load.rps for v in VARIANTS if (v, conns) in closed
            }
            for conns in args.connections
        },
        (("c", "e"), ("d", "e"), ("c", "b"), ("d", "b")),
    )
    return "\n".join([
        "## authz: Envoy ext_authz (meshguard) vs. native filters and a do-nothing server",
        "",
        f"Run {datetime.date.today().isoformat()}, `python -m benchmarks.authz.run"
        f"{' --quick' if args.quick else ''}` ({args.seconds:g} s per closed-loop run, "
        f"{args.repeat} repeat(s), median shown). Machine: {machine}.",
        "",
        "Policy set: 50 AuthorizationPolicies over 10 namespaces (5 per namespace: 2 DENY, 3 ALLOW",
        "of which one selects another workload) + one RS256 RequestAuthentication; every request",
        f"is `GET {workload.REQUEST_PATH}` to `{workload.NAMESPACE}`/`{workload.LABELS}` with the",
        "same valid JWT, and is allowed after every DENY rule was tried. (b) expresses the same",
        "rules with jwt_authn (JWT cache on, as meshguard's verified-token cache) and two RBAC",
        "filters. ext_authz timeout 1 s, failure_mode_allow false: the last column lists any",
        "ext_authz error / denied / failure_mode_allowed, non-2xx or socket error.",
        "",
        closed_table,
        "",
        "Ratios (rps): ",
        *ratios,
        "",
        f"Open-loop fixed offered load ({args.rate:g} rps, {args.fixed_seconds:g} s, "
        "32 connections):",
        "",
        fixed_table,
        "",
        HISTORY.read_text() if HISTORY.exists() else "",
    ])  # fmt: skip


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = harness.envoy_benchmark_parser(
        "python -m benchmarks.authz.run",
        __doc__,
        variants="abcde",
        meshguard_help="extra flag for meshguard authz serve (repeatable)",
    )
    return harness.finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.require("wrk", "wrk")
    machine = harness.machine()
    signer = workload.Signer.generate()
    token = signer.token()
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    closed: dict[tuple[str, int], list[Measured]] = {}
    fixed: dict[str, list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="meshguard-bench-authz-") as tmp:
        folder = Path(tmp)
        (folder / "policies.yaml").write_text(workload.yaml_text(signer))
        null_args = [sys.executable, "-m", "benchmarks.authz.null_authz", str(ports.null)]
        mg_args = _meshguard_args(folder, ports, args.meshguard_arg)
        with (
            harness.process(mg_args, folder / "meshguard.log") as meshguard,
            harness.process(null_args, folder / "null.log") as null,
            cfg.EnvoyProcess(
                envoy_config(signer, ports), concurrency=1, log_level="warning"
            ) as proxy,
        ):
            harness.wait_http(f"http://127.0.0.1:{ports.admin}/readyz")
            wait_for_port(ports.null)
            bench = Bench(proxy, {"c": meshguard.pid, "d": meshguard.pid, "e": null.pid}, token)
            for _ in range(args.repeat):
                for variant in args.variants:
                    bench.check_rules(variant)
                    bench.closed(variant, 16, 1.0)  # warm-up: connections, caches
                    for conns in args.connections:
                        m = bench.closed(variant, conns, args.seconds)
                        closed.setdefault((variant, conns), []).append(m)
                        print(_line(f"{variant} c{conns}", m), flush=True)
                    m = bench.fixed(variant, args.rate, args.fixed_seconds)
                    fixed.setdefault(variant, []).append(m)
                    print(_line(f"{variant} @{args.rate:g} rps", m), flush=True)
    text = report(closed, fixed, args, machine)
    print(text)
    if args.write:
        harness.write_section("authz", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
