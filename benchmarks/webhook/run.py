"""Validating webhook benchmark: a real ``meshguard webhook serve`` over TLS, and ``analyze``.

``python -m benchmarks.webhook.run`` (about 2 minutes; ``--quick`` for a 20-second smoke run
that writes nothing). The server gets a CA and serving certificate generated here; every
review is first sent once by a client that verifies TLS against that CA and checks the uid
echo and the verdict, then wrk (one thread, a Lua script cycling through the mix with a fresh
uid per request) drives closed-loop load at each concurrency while the server's CPU is read
from /proc. ``meshguard analyze`` is timed as a user runs it (a new process) over 1,000
resources.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks import harness
from benchmarks.webhook import tlsmaterial, workload
from meshguard.common.netutil import free_port
from meshguard.common.processes import terminate

UID = "__UID__"
TARGET_P99_MS = 5.0
TARGET_RPS = 2000.0
TARGET_ANALYZE_S = 2.0
HISTORY = Path(__file__).with_name("history.md")  # hand-kept before/after of each change
# uvloop through the policy: `webhook serve` itself runs on asyncio's default loop.
_UVLOOP = "import sys, uvloop; uvloop.install(); from meshguard.cli import main; sys.exit(main())"
# Another checkout's services/ imported as meshguard (a before/after pair on one machine).
_TREE = "import sys; sys.path.insert(0, {path!r}); from meshguard.cli import main; sys.exit(main())"


@dataclasses.dataclass(frozen=True, slots=True)
class Measured:
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int  # socket errors, non-200 or not allowed
    cpu_us: float  # server CPU per review

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# --- the server ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Server:
    process: subprocess.Popen[bytes]
    url: str
    ca: Path


@contextmanager
def serve(folder: Path, event_loop: str, tree: Path | None = None) -> Iterator[Server]:
    files = tlsmaterial.generate(folder)
    port, admin = free_port(), free_port()
    flags = [
        "webhook", "serve", "--tls-cert", str(files.cert), "--tls-key", str(files.key),
        "--host", "127.0.0.1", "--port", str(port), "--admin-port", str(admin),
    ]  # fmt: skip
    prefix = [sys.executable, "-c", _UVLOOP] if event_loop == "uvloop" else []
    if tree is not None:
        (folder / "tree").mkdir()
        (folder / "tree" / "meshguard").symlink_to(tree.resolve() / "services")
        prefix = [sys.executable, "-c", _TREE.format(path=str(folder / "tree"))]
    command = [*prefix, *flags] if prefix else [str(Path(sys.executable).with_name("meshguard")),
                                                *flags]  # fmt: skip
    with (folder / "webhook.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{admin}/readyz", process)
        yield Server(process, f"https://localhost:{port}/validate", files.ca)
    finally:
        terminate(process, timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"webhook serve exited with {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


# --- correctness, then load ------------------------------------------------------------------


def verify(server: Server, bodies: Sequence[bytes]) -> None:
    """Each review once, the way the API server sends it (TLS verified against the CA bundle):
    the answer must echo the uid and allow the object without warnings."""
    context = ssl.create_default_context(cafile=str(server.ca))
    for index, template in enumerate(bodies):
        uid = f"verify-{index}"
        request = urllib.request.Request(
            server.url,
            data=template.replace(UID.encode(), uid.encode()),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            answer = json.load(response)["response"]
        if answer.get("uid") != uid or answer.get("allowed") is not True or answer.get("warnings"):
            raise SystemExit(f"unexpected answer to review {index}: {answer}")


_LUA = """
local bodies = %(bodies)s
local counter = 0
bad = 0  -- global: done() reads it through thread:get
request = function()
  counter = counter + 1
  local parts = bodies[(counter %% #bodies) + 1]
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"},
                    parts[1] .. "load-" .. counter .. parts[2])
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"allowed":%%s*true') then bad = bad + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local rejected = 0
  for _, thread in ipairs(threads) do rejected = rejected + thread:get("bad") end
  local e = summary.errors
  io.write(string.format('\\nRESULT {"bad": %%d}\\n',
    rejected + e.connect + e.read + e.write + e.timeout))
end
"""


def lua_script(bodies: Sequence[bytes]) -> str:
    def literal(text: str) -> str:
        return "[==[" + text + "]==]"

    pairs = [body.decode().split(UID) for body in bodies]
    items = ", ".join("{" + literal(a) + ", " + literal(b) + "}" for a, b in pairs)
    return _LUA % {"bodies": "{" + items + "}"}


def load(server: Server, script: Path, connections: int, seconds: float) -> Measured:
    cpu = harness.ProcessCpu(server.process.pid)
    cpu.start()
    result = harness.wrk(f"c={connections}", server.url, connections=connections,
                         seconds=seconds, script=script, timeout=10)  # fmt: skip
    cpu.stop()
    # The script's done() adds the answers that were not 200 + allowed to the socket errors.
    line = next((x for x in result.output.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"unexpected wrk output:\n{result.output}")
    return Measured(
        connections=connections,
        requests=result.requests,
        seconds=result.seconds,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        bad=json.loads(line.removeprefix("RESULT "))["bad"],
        cpu_us=cpu.micros_per(result.requests),
    )


def time_analyze(folder: Path, resources: int, repeat: int) -> tuple[float, int]:
    """Median wall seconds of ``meshguard analyze`` over the corpus, and its exit code."""
    corpus = folder / "corpus.yaml"
    corpus.write_text(workload.analyze_corpus(resources))
    command = [str(Path(sys.executable).with_name("meshguard")), "analyze", str(corpus)]
    times, code = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        code = subprocess.run(command, capture_output=True, check=False, timeout=120).returncode
        times.append(time.perf_counter() - began)
    return statistics.median(times), code


# --- report ----------------------------------------------------------------------------------


def _machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, {ssl.OPENSSL_VERSION}, wrk 1 thread; load average "
        f"{load[0]:.1f} at start (other jobs share the cores)"
    )


SETUP = """\
One `meshguard webhook serve` process (TLS, default flags: denials logged, allows counted). Mix
cycled per request: VirtualService with 10 HTTP routes (prefix, header and RE2 regex matches,
weighted subsets, retries, a fault), DestinationRule with 5 subsets and traffic policies,
AuthorizationPolicy with 10 rules; {variants} variants of each (names and paths differ), all
valid, so every review runs every check. Each is first sent once by a client verifying TLS
against the generated CA (uid echo, allowed, no warnings); under load wrk counts socket errors,
non-200 and not-allowed answers (column "bad"). CPU is the server process's utime+stime from
/proc over the run."""
LITTLE = """\
In a closed loop the latency at concurrency c is about c / throughput (Little's law), so p99
≤ 5 ms with 16 reviews in flight needs well over 3,200 reviews/s from one process; the API
server's real concurrency is its admission rate times the latency."""


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(
    runs: Sequence[Measured], analyze: tuple[float, int], args: argparse.Namespace, machine: str
) -> str:
    rows = [(m.connections, m.requests, m.rps, m.p50_ms, m.p99_ms, m.cpu_us, m.bad) for m in runs]
    by_conns = {m.connections: m for m in runs}
    best_rps = max(m.rps for m in runs)
    at16 = by_conns.get(16)
    analyze_s, analyze_code = analyze
    targets = [
        f"- p99 ≤ {TARGET_P99_MS:g} ms at concurrency 16: "
        + (f"{at16.p99_ms:.1f} ms, {_met(at16.p99_ms <= TARGET_P99_MS)}" if at16 else "not run"),
        f"- ≥ {TARGET_RPS:,.0f} reviews/s per process: best {best_rps:,.0f}/s, "
        f"{_met(best_rps >= TARGET_RPS)}",
        f"- analyze over {args.resources:,} resources ≤ {TARGET_ANALYZE_S:g} s: "
        f"{analyze_s:.2f} s (exit {analyze_code}), {_met(analyze_s <= TARGET_ANALYZE_S)}",
    ]
    headers = ["concurrency", "reviews", "reviews/s", "p50 ms", "p99 ms",
               "server CPU µs/review", "bad"]  # fmt: skip
    return "\n".join([
        "## webhook: validating AdmissionReviews over TLS, and meshguard analyze",
        "",
        f"Run {datetime.date.today().isoformat()}, `python -m benchmarks.webhook.run"
        f"{' --quick' if args.quick else ''}` ({args.seconds:g} s per closed-loop run, event "
        f"loop {args.event_loop}). Machine: {machine}.",
        "",
        SETUP.format(variants=args.variants),
        "",
        harness.table(headers, rows),
        "",
        "Targets:",
        *targets,
        "",
        LITTLE,
        "",
        HISTORY.read_text() if HISTORY.exists() else "",
    ])  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhook.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s runs, no file written")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--variants", type=int, default=20, help="objects of each kind")
    parser.add_argument("--resources", type=int, default=1000, help="analyze corpus size")
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--server-tree", type=Path, default=None,
                        help="serve from another checkout (a worktree of the before)")  # fmt: skip
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None,
                        help="write RESULTS.md (default: yes unless --quick)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    if args.write is None:
        args.write = not args.quick
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = _machine()
    bodies = [workload.review(obj, UID) for obj in workload.mix(args.variants)]
    with tempfile.TemporaryDirectory(prefix="meshguard-bench-webhook-") as tmp:
        folder = Path(tmp)
        script = folder / "mix.lua"
        script.write_text(lua_script(bodies))
        with serve(folder, args.event_loop, args.server_tree) as server:
            verify(server, bodies)
            load(server, script, 16, 1.0)  # warm-up: caches, TLS session set-up paths
            runs = []
            for connections in args.connections:
                measured = load(server, script, connections, args.seconds)
                print(f"c={connections}: {measured}", flush=True)
                runs.append(measured)
        analyze = time_analyze(folder, args.resources, 1 if args.quick else 3)
        print(f"analyze: {analyze}", flush=True)
    text = report(runs, analyze, args, machine)
    print(text)
    if args.write:
        harness.write_section("webhook", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
