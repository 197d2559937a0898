"""The init container's redirect rules for real: pod network namespaces on one bridge.

Each pod is a network namespace with one veth into a hub namespace holding a bridge (and an
address of its own, playing a server outside the mesh). A pod runs its app, the sidecar Envoy
as uid 1337 with the injection-generated bootstrap, and the iptables rules taken verbatim
from the generated init container; the server pods run meshguard authz too. Everything lives in
namespaces created for the test and deleted afterwards (veths and the bridge go with them), so
the ports inside are free and nothing touches the host's network.

Needs root, ``ip`` (iproute2), ``iptables`` and ``setpriv`` (CI installs them from Debian).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from meshguard.common.envoy import envoy_binary
from meshguard.webhook.agent import sds
from meshguard.webhook.agent.caclient import fetch_svid
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.inject import inject
from tests.harness.meshca import start_ca
from tests.harness.meshpolicy import FRONTEND, FRONTEND_ONLY_POLICY
from tests.harness.satokens import ServiceAccountIssuer

_MISSING = [tool for tool in ("ip", "iptables", "setpriv") if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and iptables need root"),
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"missing tools: {_MISSING} (apt-get install iproute2 iptables util-linux)",
    ),
    pytest.mark.timeout(120),
]

IPS = {"client": "10.77.0.1", "server": "10.77.0.2", "other": "10.77.0.3"}
CLIENT_IP, SERVER_IP, OTHER_IP = IPS["client"], IPS["server"], IPS["other"]
OUTSIDE_IP = "10.77.0.254"  # the hub's bridge: a plain-text server outside the mesh
MESHGUARD = str(Path(sys.executable).with_name("meshguard"))
AS_PROXY = ("setpriv", "--reuid=1337", "--regid=1337", "--clear-groups")
OPEN_PATH_POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-only, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - to: [{operation: {paths: ["/open"]}}]
"""
# Prints the status line, then the body; 0 when no HTTP answer came back (refused, reset).
_FETCH = """
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
except (urllib.error.URLError, OSError):
    print(0)
"""
# The app: answers every GET with the request headers it received, as JSON.
_ECHO = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Echo).serve_forever()
"""


def _run(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30).stdout


class Namespaces:
    """A hub namespace with a bridge, and one namespace per pod with a veth into it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.hub = f"mgh-{tag}"
        self.pods = {pod: f"mg{pod[0]}-{tag}" for pod in IPS}
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def client(self) -> str:
        return self.pods["client"]

    @property
    def server(self) -> str:
        return self.pods["server"]

    @property
    def other(self) -> str:
        return self.pods["other"]

    def create(self) -> None:
        for ns in (self.hub, *self.pods.values()):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "br0")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for pod, ns in self.pods.items():
            # Both ends are created inside namespaces: nothing is left on the host if we fail.
            port = f"v-{pod}"
            _run("ip", "-n", self.hub, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", ns)  # fmt: skip
            _run("ip", "-n", self.hub, "link", "set", port, "master", "br0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{IPS[pod]}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")

    def start(self, ns: str, *argv: str, log: Path) -> None:
        with log.open("wb") as out:
            self.processes.append(
                subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=out)
            )

    def get(self, ns: str, url: str, *, as_proxy: bool = False) -> tuple[int, str]:
        argv = ["ip", "netns", "exec", ns, *(AS_PROXY if as_proxy else ()), sys.executable]
        status, _, body = _run(*argv, "-c", _FETCH, url).partition("\n")
        return int(status), body

    def fetch(self, ns: str, url: str, *, as_proxy: bool = False) -> int:
        return self.get(ns, url, as_proxy=as_proxy)[0]

    def wait_for(self, ns: str, url: str, log: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.fetch(ns, url) == 200:
                return
            time.sleep(0.3)
        raise TimeoutError(f"{url} in {ns} never answered 200:\n{log.read_text()[-3000:]}")

    def stats(self, ns: str) -> dict[str, Any]:
        _, body = self.get(ns, "http://127.0.0.1:15000/stats?format=json")
        return {s["name"]: s.get("value") for s in json.loads(body)["stats"] if "name" in s}

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for ns in (*self.pods.values(), self.hub):
            _run("ip", "netns", "del", ns, check=False)


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    spaces = Namespaces()
    try:
        spaces.create()
        yield spaces
    finally:
        spaces.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Readable by uid 1337 (pytest's tmp_path is private to root).
    path = Path(tempfile.mkdtemp(prefix="meshguard-netns-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _write_svids(workdir: Path, *accounts: str) -> None:
    """One mesh CA signs an SVID per account into ``<workdir>/<account>/sds``, owned by 1337."""
    tokens = ServiceAccountIssuer.create()
    ca = await start_ca(workdir / "ca", tokens, default_ttl=datetime.timedelta(hours=1))
    try:
        for account in accounts:
            svid, bundle = await fetch_svid(ca.endpoint(), tokens.token("default", account), 0)
            out = workdir / account / "sds"
            sds.write_sds_resources(out)
            sds.write_svid(out, svid, bundle)
            for path in (out.parent, out, *out.iterdir()):
                os.chown(path, 1337, 1337)
    finally:
        await ca.stop()


def _injected_pod(
    account: str, ports: tuple[int, ...], annotations: Mapping[str, str], config: InjectionConfig
) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{account}-1",
            "labels": {"app": account},
            "annotations": annotations,
        },
        "spec": {
            "serviceAccountName": account,
            "containers": [
                {"name": account, "image": "a", "ports": [{"containerPort": p} for p in ports]}
            ],
        },
    }
    return inject(pod, "default", config).pod


def _sidecar_config(workdir: Path, account: str) -> InjectionConfig:
    return InjectionConfig(
        authz_address="127.0.0.1:9001",  # the pod's own meshguard authz (server pods)
        ratelimit_address="127.0.0.1:1",  # down: fails open, the tests are about capture
        sds_dir=str(workdir / account / "sds"),
    )


def _start_pod_sidecar(netns: Namespaces, ns: str, workdir: Path, pod: dict[str, Any]) -> None:
    """Start the pod's sidecar Envoy as uid 1337, then apply its init container's rules."""
    name = pod["metadata"]["name"]
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "meshguard-proxy")
    bootstrap = {e["name"]: e.get("value") for e in proxy["env"]}["MESHGUARD_ENVOY_BOOTSTRAP"]
    config_file = workdir / f"{name}-envoy.json"
    config_file.write_text(bootstrap)
    log = workdir / f"{name}-envoy.log"
    netns.start(ns, *AS_PROXY, str(envoy_binary()), "-c", str(config_file),
                "--concurrency", "1", "--disable-hot-restart", log=log)  # fmt: skip
    netns.wait_for(ns, "http://127.0.0.1:15000/ready", log)
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "meshguard-init")
    _run("ip", "netns", "exec", ns, "sh", "-c", init["command"][2])


def _start_authz(netns: Namespaces, ns: str, workdir: Path, policy: str) -> None:
    (workdir / "policy.yaml").write_text(policy)
    log = workdir / "authz.log"
    netns.start(ns, MESHGUARD, "authz", "serve", "--policies", str(workdir / "policy.yaml"),
                "--host", "127.0.0.1", "--grpc-port", "9001", "--admin-port", "9002",
                log=log)  # fmt: skip
    netns.wait_for(ns, "http://127.0.0.1:9002/readyz", log)


def _start_app(netns: Namespaces, ns: str, port: int, workdir: Path) -> None:
    log = workdir / f"app-{ns}-{port}.log"
    netns.start(ns, sys.executable, "-c", _ECHO, str(port), log=log)
    netns.wait_for(ns, f"http://127.0.0.1:{port}/", log)


async def test_inbound_capture_exclusions_and_no_loop(netns: Namespaces, workdir: Path) -> None:
    """Server pod, PERMISSIVE so plain text from the client namespace reaches authz."""
    await _write_svids(workdir, "web")
    annotations = {
        "sidecar.meshguard.io/mtlsMode": "PERMISSIVE",
        "traffic.sidecar.meshguard.io/excludeInboundPorts": "9100",
    }
    pod = _injected_pod("web", (8080, 9100), annotations, _sidecar_config(workdir, "web"))
    server, client = netns.server, netns.client
    for port in (8080, 9100):
        _start_app(netns, server, port, workdir)
    _start_authz(netns, server, workdir, OPEN_PATH_POLICY)
    _start_pod_sidecar(netns, server, workdir, pod)

    # Captured: the sidecar answers, authz decides.
    assert netns.fetch(client, f"http://{SERVER_IP}:8080/closed") == 403
    # Allowed requests reach the app through Envoy (which adds x-request-id): Envoy's own
    # connection (uid 1337) to the app is not captured again.
    status, body = netns.get(client, f"http://{SERVER_IP}:8080/open")
    assert status == 200 and "x-request-id" in json.loads(body)
    # Excluded port: straight to the app, authz never sees it.
    status, body = netns.get(client, f"http://{SERVER_IP}:9100/closed")
    assert status == 200 and "x-request-id" not in json.loads(body)

    # Outbound, from inside the pod to a plain-text server outside the mesh.
    _start_app(netns, netns.hub, 8081, workdir)
    outside = f"http://{OUTSIDE_IP}:8081/"
    # The proxy's own uid goes straight out (uid 1337 returns first).
    assert netns.fetch(server, outside, as_proxy=True) == 200
    # The app's call is captured by the outbound listener, which originates mTLS: a plain-text
    # destination cannot speak it (503), the proof the call went through Envoy.
    assert netns.fetch(server, outside) == 503
    stats = netns.stats(server)
    assert stats["http.inbound_8080.ext_authz.denied"] == 1
    assert stats["http.inbound_8080.ext_authz.ok"] == 1  # exactly one check: no loop
    assert stats.get("http.inbound_9100.ext_authz.ok", 0) == 0
    # One captured request, one upstream connection attempt: Envoy's own mTLS connection
    # (uid 1337) was not captured again.
    assert stats["http.outbound.downstream_rq_total"] == 1
    assert stats["cluster.outbound|original-dst.upstream_cx_total"] == 1


async def test_meshed_client_calls_strict_server_both_pods_captured(
    netns: Namespaces, workdir: Path
) -> None:
    """Plain HTTP from frontend's app is captured, upgraded to mTLS, and authz sees frontend.

    ``web`` is STRICT and allows only frontend's principal; ``intruder`` is meshed too (its own
    SVID), so it reaches authz and is refused. frontend captures only the server's range
    (``includeOutboundIPRanges``), intruder everything (the default).
    """
    await _write_svids(workdir, "web", "frontend", "intruder")
    server = _injected_pod("web", (8080,), {}, _sidecar_config(workdir, "web"))
    include = {"traffic.sidecar.meshguard.io/includeOutboundIPRanges": f"{SERVER_IP}/32"}
    frontend = _injected_pod("frontend", (), include, _sidecar_config(workdir, "frontend"))
    intruder = _injected_pod("intruder", (), {}, _sidecar_config(workdir, "intruder"))
    _start_app(netns, netns.server, 8080, workdir)
    _start_authz(netns, netns.server, workdir, FRONTEND_ONLY_POLICY)
    _start_pod_sidecar(netns, netns.server, workdir, server)
    _start_pod_sidecar(netns, netns.client, workdir, frontend)
    _start_pod_sidecar(netns, netns.other, workdir, intruder)

    status, body = netns.get(netns.client, f"http://{SERVER_IP}:8080/hello")
    assert status == 200, body
    seen = json.loads(body)
    assert f"URI={FRONTEND}" in seen["x-forwarded-client-cert"]  # what authz matched on
    assert "x-envoy-original-dst-host" not in seen
    assert netns.fetch(netns.other, f"http://{SERVER_IP}:8080/hello") == 403
    # Plain text that skips the caller's sidecar (uid 1337 is not captured) meets STRICT.
    assert netns.fetch(netns.other, f"http://{SERVER_IP}:8080/hello", as_proxy=True) == 0

    # includeOutboundIPRanges: frontend's call outside the named range is not captured.
    _start_app(netns, netns.hub, 8081, workdir)
    assert netns.fetch(netns.client, f"http://{OUTSIDE_IP}:8081/") == 200
    assert netns.fetch(netns.other, f"http://{OUTSIDE_IP}:8081/") == 503  # captured: mTLS

    server_stats = netns.stats(netns.server)
    assert server_stats["http.inbound_8080.ext_authz.ok"] == 1
    assert server_stats["http.inbound_8080.ext_authz.denied"] == 1
    assert netns.stats(netns.client)["http.outbound.downstream_rq_total"] == 1
    assert netns.stats(netns.other)["http.outbound.downstream_rq_total"] == 2
