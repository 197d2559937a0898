"""Envoy's rate-limit filter with meshguard (Redis and memory) vs. Envoy alone and local_ratelimit.

``python -m benchmarks.ratelimit.run`` (about 4 minutes; ``--quick`` for a short smoke run).
One Envoy (``--concurrency 1``) carries one listener per variant; every listener routes to the
same upstream listener (the rate-limit filter does nothing on a direct response), so the only
difference between variants is the filter:

(a) none, (b) Envoy's in-proxy ``local_ratelimit`` (the ceiling), (c) ``ratelimit`` →
``meshguard ratelimit serve --backend redis`` on a redis-server this run starts, (d) the same
filter → a second meshguard process with the memory backend.

Direct gRPC load (h2load, one connection multiplexing 16 or 64 streams, like Envoy's single
connection) measures the meshguard processes without Envoy. meshguard's CPU comes from /proc,
decisions from its own counters, Redis round trips from Redis's ``total_reads_processed``.
Envoy's ``ratelimit.error`` / ``failure_mode_allowed`` counters are read around every run (the
filter's timeout is explicit and failure_mode_deny is on): a time-out must not look like speed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from benchmarks import harness
from benchmarks.ratelimit import workload
from meshguard.common import envoy as cfg
from meshguard.common.netutil import free_port, wait_for_port
from tests.harness.redis import RedisServer

_RATELIMIT = "envoy.extensions.filters.http.ratelimit.v3.RateLimit"
_LOCAL = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
RATELIMIT_TIMEOUT = "0.5s"
VARIANTS = {
    "a": "Envoy alone (same upstream hop)",
    "b": "Envoy local_ratelimit (in-proxy ceiling)",
    "c": "Envoy + meshguard/redis",
    "d": "Envoy + meshguard/memory",
}
DIRECT = {"redis": "direct gRPC → meshguard/redis", "memory": "direct gRPC → meshguard/memory"}
HISTORY = Path(__file__).with_name("history.md")  # hand-kept before/after of each optimisation
_ENVOY_COUNTERS = ("ok", "over_limit", "error", "failure_mode_allowed")


@dataclasses.dataclass(frozen=True, slots=True)
class Measured:
    label: str
    load: harness.LoadResult
    decisions: int  # ShouldRateLimit calls meshguard answered (0 without meshguard)
    meshguard_us: float  # meshguard CPU µs per decision (nan without meshguard)
    envoy_us: float  # Envoy CPU µs per request (nan for direct runs)
    redis_trips: float  # Redis reads processed per decision (nan without Redis)
    redis_commands: float  # Redis commands per decision
    problems: dict[str, int]


# --- processes -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Meshguard:
    """One ``meshguard ratelimit serve`` subprocess."""

    pid: int
    grpc_port: int
    admin_port: int

    def counters(self) -> dict[str, int]:
        """Calls answered and calls failed, from its Prometheus endpoint."""
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as response:
            text = response.read().decode()

        def value(pattern: str) -> int:
            found = re.search(rf"^{pattern} ([\d.e+]+)$", text, re.M)
            return int(float(found.group(1))) if found else 0

        errors = r"ratelimit_service_should_rate_limit_error_total\{err_type="
        return {
            "decisions": value(r'ratelimit_service_total_requests_total\{grpc_method="\w+"\}'),
            "redis_error": value(errors + '"redis_error"\\}'),
            "service_error": value(errors + '"service_error"\\}'),
        }


def meshguard_args(
    folder: Path, backend: str, ports: tuple[int, int, int], redis_url: str, extra: Sequence[str]
) -> list[str]:
    grpc_port, http_port, admin_port = ports
    script = Path(sys.executable).with_name("meshguard")
    return [
        str(script), "ratelimit", "serve",
        "--config", str(folder / "config"),
        "--backend", backend,
        "--redis-url", redis_url,
        "--host", "127.0.0.1",
        "--grpc-port", str(grpc_port),
        "--http-port", str(http_port),
        "--admin-port", str(admin_port),
        "--log-level", "warning",
        *extra,
    ]  # fmt: skip


# --- Envoy configuration -------------------------------------------------------------------


def _ratelimit_filter(cluster: str) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": cfg.typed(
            _RATELIMIT,
            domain=workload.DOMAIN,
            timeout=RATELIMIT_TIMEOUT,
            failure_mode_deny=True,
            rate_limit_service={
                "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
                "transport_api_version": "V3",
            },
        ),
    }


def _local_filter() -> cfg.JsonObject:
    """A token bucket that never runs dry, enforced on every request (no descriptors)."""
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": cfg.typed(
            _LOCAL,
            stat_prefix="local",
            token_bucket={
                "max_tokens": 1_000_000_000,
                "tokens_per_fill": 1_000_000_000,
                "fill_interval": "1s",
            },
            filter_enabled={
                "runtime_key": "local_enabled",
                "default_value": {"numerator": 100, "denominator": "HUNDRED"},
            },
            filter_enforced={
                "runtime_key": "local_enforced",
                "default_value": {"numerator": 100, "denominator": "HUNDRED"},
            },
        ),
    }


def _route(variant: str) -> cfg.JsonObject:
    route = cfg.cluster_route(f"up_{variant}", timeout=5.0)
    route["route"]["rate_limits"] = workload.ROUTE_RATE_LIMITS
    return route


def envoy_config(upstream_port: int, rls_ports: dict[str, int]) -> cfg.JsonObject:
    filters: dict[str, list[cfg.JsonObject]] = {
        "a": [],
        "b": [_local_filter()],
        "c": [_ratelimit_filter("rls_redis")],
        "d": [_ratelimit_filter("rls_memory")],
    }
    listeners = [
        cfg.http_listener("upstream", upstream_port, routes=[cfg.direct_response_route(200, "ok")]),
        *(cfg.http_listener(v, routes=[_route(v)], http_filters=f) for v, f in filters.items()),
    ]
    clusters = [
        *(cfg.static_cluster(f"up_{v}", upstream_port) for v in VARIANTS),
        *(cfg.grpc_cluster(f"rls_{name}", port) for name, port in rls_ports.items()),
    ]
    return cfg.bootstrap(listeners=listeners, clusters=clusters)


# --- direct gRPC load ----------------------------------------------------------------------


def h2load(
    label: str, port: int, body: Path, *, streams: int, seconds: float
) -> harness.LoadResult:
    """Closed-loop gRPC load: one HTTP/2 connection with ``streams`` concurrent calls. h2load
    prints no percentiles, so they come from its per-request log."""
    binary = harness.require("h2load", "nghttp2-client")
    log = body.with_name(f"h2load-{port}-{streams}.log")
    args = [
        binary, "-D", str(int(seconds)), "-c", "1", "-t", "1", "-m", str(streams),
        "-H", "content-type: application/grpc", "-H", "te: trailers",
        "-d", str(body), "--log-file", str(log),
        f"http://127.0.0.1:{port}{workload.GRPC_PATH}",
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60)
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if counts is None:
        raise RuntimeError(f"unexpected h2load output:\n{out.stdout}\n{out.stderr}")
    rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    durations = sorted(int(row[2]) / 1000 for row in rows)
    starts = [int(row[0]) for row in rows]
    elapsed = (max(starts) - min(starts)) / 1e6 if len(starts) > 1 else seconds
    done, succeeded = int(counts.group(1)), int(counts.group(2))
    return harness.LoadResult(
        label=label,
        requests=len(rows),
        seconds=elapsed,
        rps=len(rows) / elapsed,
        p50_ms=harness.percentile(durations, 50),
        p99_ms=harness.percentile(durations, 99),
        non_2xx=sum(1 for row in rows if row[1] != "200"),
        errors=done - succeeded,
    )


def redis_benchmark(port: int, pipeline: int) -> str:
    """``redis-benchmark INCR`` (50 clients) on the run's Redis: its rps line."""
    binary = harness.require("redis-benchmark", "redis-tools")
    args = [binary, "-p", str(port), "-t", "incr", "-n", "200000", "-c", "50", "-P", str(pipeline)]
    out = subprocess.run([*args, "-q"], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1].split("\r")[-1].strip()


# --- measuring -----------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        proxy: cfg.EnvoyProcess | None,
        meshguards: dict[str, Meshguard],
        redis_client: redis.Redis,
        folder: Path,
    ) -> None:
        self.proxy = proxy
        self.meshguards = meshguards  # by variant or direct name
        self.redis = redis_client
        self.script = folder / "users.lua"
        self.script.write_text(workload.WRK_SCRIPT)
        self.body = folder / "request.bin"
        self.body.write_bytes(workload.grpc_body(7))

    def _envoy_counters(self, variant: str) -> dict[str, int]:
        if self.proxy is None or variant not in VARIANTS:
            return {}
        prefix = f"cluster.up_{variant}.ratelimit."
        stats = self.proxy.stats(rf"^cluster\.up_{variant}\.ratelimit\.")
        return {name: stats.get(prefix + name, 0) for name in _ENVOY_COUNTERS}

    def _redis(self) -> tuple[int, int]:
        info = self.redis.info("stats")
        return int(info["total_reads_processed"]), int(info["total_commands_processed"])

    def measure(self, key: str, label: str, load: Callable[[], harness.LoadResult]) -> Measured:
        meshguard = self.meshguards.get(key)
        uses_redis = key in ("c", "redis")
        mg_cpu = harness.ProcessCpu(meshguard.pid) if meshguard else None
        envoy_cpu = harness.ProcessCpu(self.proxy.pid) if self.proxy and key in VARIANTS else None
        envoy_before = self._envoy_counters(key)
        mg_before = meshguard.counters() if meshguard else {}
        redis_before = self._redis()
        for cpu in (mg_cpu, envoy_cpu):
            if cpu:
                cpu.start()
        result = load()
        for cpu in (mg_cpu, envoy_cpu):
            if cpu:
                cpu.stop()
        redis_after = self._redis()
        mg_after = meshguard.counters() if meshguard else {}
        envoy_after = self._envoy_counters(key)
        decisions = mg_after.get("decisions", 0) - mg_before.get("decisions", 0)
        problems = {
            k: envoy_after[k] - envoy_before[k]
            for k in ("over_limit", "error", "failure_mode_allowed")
            if envoy_after.get(k, 0) - envoy_before.get(k, 0)
        }
        for k in ("redis_error", "service_error"):
            if mg_after.get(k, 0) - mg_before.get(k, 0):
                problems[f"meshguard {k}"] = mg_after[k] - mg_before[k]
        if result.non_2xx:
            problems["non_2xx"] = result.non_2xx
        if result.errors:
            problems["socket_errors"] = result.errors
        nan = float("nan")
        trips = (redis_after[0] - redis_before[0]) / decisions if uses_redis and decisions else nan
        commands = (
            (redis_after[1] - redis_before[1]) / decisions if uses_redis and decisions else nan
        )
        return Measured(
            label,
            result,
            decisions,
            mg_cpu.micros_per(decisions) if mg_cpu else nan,
            envoy_cpu.micros_per(result.requests) if envoy_cpu else nan,
            trips,
            commands,
            problems,
        )

    def url(self, variant: str) -> str:
        assert self.proxy is not None
        return f"http://127.0.0.1:{self.proxy.listener_port(variant)}/"

    def check(self, variant: str) -> None:
        """Refuse to measure a listener that does not answer 200 through the upstream."""
        request = urllib.request.Request(self.url(variant), headers=workload.headers(1))
        with urllib.request.urlopen(request, timeout=5.0) as response:
            if response.status != 200:
                raise SystemExit(f"variant {variant} answered {response.status}")
        if variant in "cd" and not self._envoy_counters(variant)["ok"]:
            raise SystemExit(f"variant {variant}: Envoy did not ask meshguard")

    def closed(self, variant: str, connections: int, seconds: float) -> Measured:
        label = f"({variant}) {VARIANTS[variant]}"
        return self.measure(
            variant,
            label,
            lambda: harness.wrk(
                label,
                self.url(variant),
                connections=connections,
                seconds=seconds,
                script=self.script,
            ),
        )

    def fixed(self, variant: str, rate: float, seconds: float) -> Measured:
        assert self.proxy is not None
        port = self.proxy.listener_port(variant)
        label = f"({variant}) {VARIANTS[variant]}"
        return self.measure(
            variant,
            label,
            lambda: asyncio.run(
                harness.fixed_rate(
                    label, "127.0.0.1", port, "/", rate=rate, seconds=seconds,
                    header_sets=workload.header_sets(),
                )
            ),
        )  # fmt: skip

    def direct(self, name: str, streams: int, seconds: float) -> Measured:
        port = self.meshguards[name].grpc_port
        return self.measure(
            name,
            DIRECT[name],
            lambda: h2load(DIRECT[name], port, self.body, streams=streams, seconds=seconds),
        )


# --- reporting -----------------------------------------------------------------------------


def _median_of(runs: Sequence[Measured]) -> Measured:
    """The run with the median throughput (keeps one run's numbers together)."""
    return sorted(runs, key=lambda m: m.load.rps)[len(runs) // 2]


def _num(value: float, digits: int = 0) -> object:
    return "—" if value != value else round(value, digits) if digits else round(value)


def _problems(m: Measured) -> str:
    return ", ".join(f"{k} {v}" for k, v in m.problems.items()) or "none"


def _row(m: Measured, conns: object) -> tuple[object, ...]:
    return (
        m.label, conns, m.load.rps, m.load.p50_ms, m.load.p99_ms, _num(m.meshguard_us),
        _num(m.envoy_us), _num(m.redis_trips, 3), _num(m.redis_commands, 2), _problems(m),
    )  # fmt: skip


_HEADERS = [
    "variant", "conns", "rps", "p50 ms", "p99 ms", "meshguard CPU µs/decision",
    "Envoy CPU µs/req", "Redis round trips/decision", "Redis cmds/decision", "problems",
]  # fmt: skip


def line(m: Measured) -> str:
    return (
        f"{m.label}: {m.load.rps:,.0f} rps, p50 {m.load.p50_ms:.2f} ms, p99 {m.load.p99_ms:.2f} ms,"
        f" meshguard {_num(m.meshguard_us)} µs/decision, Redis {_num(m.redis_trips, 3)} trips"
        f"/decision [{_problems(m)}]"
    )


def report(
    closed: dict[tuple[str, int], list[Measured]],
    fixed: dict[str, list[Measured]],
    redis_lines: list[str],
    args: argparse.Namespace,
    machine: str,
) -> str:
    ordered = sorted(closed.items(), key=lambda kv: (kv[0][1], kv[0][0] in DIRECT, kv[0][0]))
    closed_table = harness.table(_HEADERS, [_row(_median_of(r), c) for (_, c), r in ordered])
    fixed_table = harness.table(
        ["variant", "offered rps", "achieved rps", "p50 ms", "p99 ms", "meshguard CPU µs/decision",
         "problems"],
        [
            (m.label, args.rate, m.load.rps, m.load.p50_ms, m.load.p99_ms, _num(m.meshguard_us),
             _problems(m))
            for m in (_median_of(runs) for _, runs in sorted(fixed.items()))
        ],
    )  # fmt: skip
    ratios = harness.ratio_lines(
        {
            conns: {
                v: _median_of(closed[(v, conns)]).load.rps for v in VARIANTS if (v, conns) in closed
            }
            for conns in args.connections
        },
        (("c", "a"), ("d", "a"), ("c", "b"), ("c", "d")),
    )
    return "\n".join([
        "## ratelimit: Envoy rate-limit filter with meshguard vs. Envoy alone and local_ratelimit",
        "",
        f"Run {datetime.date.today().isoformat()}, `python -m benchmarks.ratelimit.run"
        f"{' --quick' if args.quick else ''}` ({args.seconds:g} s per closed-loop run, "
        f"{args.repeat} repeat(s), median-throughput run shown). Machine: {machine}.",
        "",
        f"Workload: domain `{workload.DOMAIN}`, two descriptors per request (`user` from "
        f"{workload.USERS:,} distinct values,",
        f"`tenant` from {workload.TENANTS}), each with an hourly limit far above the run, so every",
        "decision counts in the store and is OK. Through Envoy, wrk picks a random user per",
        "request; each listener routes to the same upstream listener (direct response) so (a)",
        f"pays the same hop. Rate-limit filter: timeout {RATELIMIT_TIMEOUT}, failure_mode_deny",
        "on; the problems column lists Envoy's",
        "`ratelimit.error` / `failure_mode_allowed` / `over_limit`, meshguard's error counters,",
        "non-2xx and socket errors. (b) is a never-empty token bucket on every request (no",
        "descriptors). Direct rows: h2load, one HTTP/2 connection with `conns` concurrent streams,",
        "one request body (the same two keys every call; h2load sends one body). CPU from /proc",
        "(all threads of `meshguard ratelimit serve`), decisions from meshguard's own counter;",
        "Redis round trips = Redis `total_reads_processed` per decision (4 commands per decision:",
        "INCRBY + EXPIRE per descriptor).",
        "",
        closed_table,
        "",
        "Ratios (rps):",
        *ratios,
        "",
        f"Open-loop fixed offered load ({args.rate:g} rps, {args.fixed_seconds:g} s, 32 "
        "connections, users in a fixed shuffled order):",
        "",
        fixed_table,
        "",
        "`redis-benchmark -t incr -c 50` on the same Redis: " + "; ".join(redis_lines),
        "",
        HISTORY.read_text() if HISTORY.exists() else "",
    ])  # fmt: skip


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = harness.envoy_benchmark_parser(
        "python -m benchmarks.ratelimit.run",
        __doc__,
        variants="abcd",
        meshguard_help="extra flag for both meshguard processes (repeatable)",
    )
    parser.add_argument("--direct", default="redis,memory", help="direct targets ('' for none)")
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed-rate runs")
    return harness.finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.require("wrk", "wrk")
    machine = harness.machine()
    direct = [d for d in args.direct.split(",") if d]
    closed: dict[tuple[str, int], list[Measured]] = {}
    fixed: dict[str, list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="meshguard-bench-ratelimit-") as tmp:
        folder = Path(tmp)
        (folder / "config").mkdir()
        (folder / "config" / "bench.yaml").write_text(workload.CONFIG_YAML)
        server = RedisServer(folder).start()
        try:
            ports = {b: (free_port(), free_port(), free_port()) for b in ("redis", "memory")}
            with (
                harness.process(
                    meshguard_args(folder, "redis", ports["redis"], server.url, args.meshguard_arg),
                    folder / "meshguard-redis.log",
                ) as mg_redis,
                harness.process(
                    meshguard_args(
                        folder, "memory", ports["memory"], server.url, args.meshguard_arg
                    ),
                    folder / "meshguard-memory.log",
                ) as mg_memory,
            ):
                for _, _, admin in ports.values():
                    harness.wait_http(f"http://127.0.0.1:{admin}/readyz")
                redis_mg = Meshguard(mg_redis.pid, ports["redis"][0], ports["redis"][2])
                memory_mg = Meshguard(mg_memory.pid, ports["memory"][0], ports["memory"][2])
                meshguards = {"c": redis_mg, "redis": redis_mg, "d": memory_mg, "memory": memory_mg}
                upstream = free_port()
                rls = {"redis": redis_mg.grpc_port, "memory": memory_mg.grpc_port}
                with cfg.EnvoyProcess(
                    envoy_config(upstream, rls), concurrency=1, log_level="warning"
                ) as proxy:
                    wait_for_port(upstream)
                    bench = Bench(proxy, meshguards, server.client(), folder)
                    for _ in range(args.repeat):
                        for name in direct:
                            bench.direct(name, 16, 1.0)  # warm-up
                            for conns in args.connections:
                                m = bench.direct(name, conns, args.seconds)
                                closed.setdefault((name, conns), []).append(m)
                                print(line(m) + f" c{conns}", flush=True)
                        for variant in args.variants:
                            bench.check(variant)
                            bench.closed(variant, 16, 1.0)  # warm-up: connections, caches
                            for conns in args.connections:
                                m = bench.closed(variant, conns, args.seconds)
                                closed.setdefault((variant, conns), []).append(m)
                                print(line(m) + f" c{conns}", flush=True)
                            if not args.no_fixed:
                                m = bench.fixed(variant, args.rate, args.fixed_seconds)
                                fixed.setdefault(variant, []).append(m)
                                print(line(m) + f" @{args.rate:g} rps", flush=True)
            redis_lines = [f"{redis_benchmark(server.port, p)} (-P {p})" for p in (1, 16)]
        finally:
            server.stop()
    text = report(closed, fixed, redis_lines, args, machine)
    print(text)
    if args.write:
        harness.write_section("ratelimit", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
