"""What every meshguard benchmark needs: a load generator, per-process CPU, and a results file.

Numbers are only comparable side by side in one run on one machine, so each benchmark runs
every variant in the same process of this harness and reports ratios. See
../shared/reference/benchmarking-notes.md for the pitfalls this guards against (Envoy timeouts
passing requests silently, CPU hidden behind throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import re
import shutil
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from meshguard.common import envoy as envoy_config

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True, slots=True)
class LoadResult:
    """One load run: throughput, latency percentiles (ms) and what failed."""

    label: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    output: str = ""  # wrk's stdout, for what a script's done() prints


class ProcessCpu:
    """CPU seconds (user + system, all threads) a process used between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = 0.0
        self.seconds = 0.0

    def _read(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); after the ")" split they are 11, 12.
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        self.seconds = self._read() - self._start
        return self.seconds

    def micros_per(self, count: int) -> float:
        return self.seconds * 1e6 / count if count else float("nan")


def require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"{tool} not found: apt-get install -y {package}")
    return found


_DURATION = re.compile(r"([\d.]+)(us|ms|s|m)\b")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    found = _DURATION.fullmatch(text.strip())
    if not found:
        raise ValueError(f"cannot read wrk duration {text!r}")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def wrk(
    label: str,
    url: str,
    *,
    connections: int,
    seconds: float = 10.0,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
    timeout: float | None = None,
) -> LoadResult:
    """Closed-loop load with wrk (Debian's package) at ``connections`` concurrency; ``script``
    is a wrk Lua file (e.g. varying bodies per request); ``timeout`` is wrk's per-request
    timeout in seconds (wrk's default is 2 s)."""
    binary = require("wrk", "wrk")
    args = [binary, "--latency", f"-c{connections}", f"-t{threads}", f"-d{int(seconds)}s"]
    if timeout is not None:
        args += ["--timeout", f"{int(timeout)}s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if total is None or "50" not in percentiles:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(total.group(1))
    elapsed = _ms(total.group(2) + total.group(3)) / 1000
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return LoadResult(
        label=label,
        requests=requests,
        seconds=elapsed,
        rps=requests / elapsed,
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
        output=out,
    )


async def fixed_rate(
    label: str,
    host: str,
    port: int,
    path: str = "/",
    *,
    rate: float = 1000.0,
    seconds: float = 10.0,
    connections: int = 32,
    headers: Mapping[str, str] | None = None,
    header_sets: Sequence[Mapping[str, str]] = (),
) -> LoadResult:
    """Open-loop HTTP/1.1 load at a fixed offered rate.

    Each connection sends its next request when both its schedule and its previous response
    allow. Latency is measured from that moment: a server stall that holds a connection past
    its next slot counts in full (no coordinated omission), while the client's own timer slop
    on an idle connection does not. Request ``n`` adds ``header_sets[n % len]`` when given."""

    def encoded(more: Mapping[str, str]) -> bytes:
        extra = "".join(f"{k}: {v}\r\n" for k, v in {**(headers or {}), **more}.items())
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()

    requests = [encoded(more) for more in header_sets] or [encoded({})]
    total = int(rate * seconds)
    interval = 1.0 / rate
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def connection(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        free_since = 0.0
        try:
            for n in range(index, total, connections):
                intended = start + n * interval
                delay = intended - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(requests[n % len(requests)])
                status = await _read_response(reader)
                done = time.perf_counter()
                latencies.append(done - max(intended, free_since))
                free_since = done
                statuses.append(status)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return LoadResult(
        label=label,
        requests=len(ordered),
        seconds=elapsed,
        rps=len(ordered) / elapsed,
        p50_ms=_percentile(ordered, 50) * 1000,
        p99_ms=_percentile(ordered, 99) * 1000,
        non_2xx=sum(1 for s in statuses if not 200 <= s < 400),
        errors=errors,
    )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def _percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of already sorted values (nearest rank; nan when empty)."""
    return _percentile(ordered, pct)


def wait_http(url: str, timeout: float = 20.0) -> None:
    """Until ``url`` answers 200 (a served process's readiness endpoint)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@contextmanager
def process(args: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess (output to ``log``) terminated, or killed, on exit."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def machine() -> str:
    """One line on the machine and tools, for the head of a results section."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    envoy_version = (
        subprocess.run(
            [str(envoy_config.envoy_binary()), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.strip()
        .split("version: ")[-1]
        .split("/")[1:2]
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, Envoy {''.join(envoy_version) or '?'} (`--concurrency 1`), "
        f"wrk 1 thread; load average {load[0]:.1f} at start (other jobs share the cores)"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats get a sensible precision."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, markdown: str, results: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md, leaving the others untouched."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    results.write_text(text)


def envoy_benchmark_parser(
    prog: str, description: str | None, *, variants: str, meshguard_help: str
) -> argparse.ArgumentParser:
    """The options every "Envoy in front of meshguard" benchmark takes; a benchmark adds its
    own, then calls :func:`finish_args`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="2 s runs, no file written")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fixed-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--variants", default=variants, help="subset to run, e.g. cd")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None,
                        help="write RESULTS.md (default: yes unless --quick)")  # fmt: skip
    parser.add_argument("--meshguard-arg", action="append", default=[], help=meshguard_help)
    return parser


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """``--quick`` shortens the runs and, unless told otherwise, writes nothing."""
    if args.quick:
        args.seconds, args.fixed_seconds = 2.0, 3.0
    if args.write is None:
        args.write = not args.quick
    return args


def ratio_lines(
    rps: Mapping[int, Mapping[str, float]], pairs: Sequence[tuple[str, str]]
) -> list[str]:
    """``- 16 connections: c/e = 1.32, ...`` for each concurrency; pairs with a missing side
    (a variant not run) are left out."""
    lines = []
    for conns, by_variant in rps.items():
        parts = [
            f"{n}/{d} = {by_variant[n] / by_variant[d]:.2f}"
            for n, d in pairs
            if n in by_variant and d in by_variant
        ]
        lines.append(f"- {conns} connections: " + ", ".join(parts))
    return lines
