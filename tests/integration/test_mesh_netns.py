"""The init container's redirect rules for real, in two network namespaces joined by a veth.

The server namespace plays the pod: the app (port 8080, and 9100 which the pod excludes), the
sidecar Envoy running as uid 1337 with the injection-generated bootstrap (REDIRECT mode,
PERMISSIVE so plain text reaches authz), meshguard authz, and the iptables rules taken verbatim
from the generated init container. The client namespace plays another pod, and a plain-text
server outside the mesh for the outbound capture.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshguard.common.envoy import envoy_binary
from meshguard.webhook.agent import sds
from meshguard.webhook.agent.caclient import fetch_svid
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.inject import inject
from tests.harness.meshca import start_ca
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

CLIENT_IP, SERVER_IP = "10.77.0.1", "10.77.0.2"
POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-only, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - to: [{operation: {paths: ["/open"]}}]
"""
_FETCH = """
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def _run(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30).stdout


class Namespaces:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client, self.server = f"mgc-{tag}", f"mgs-{tag}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def create(self) -> None:
        for ns in (self.client, self.server):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        veth_c, veth_s = f"{self.client}-v"[:15], f"{self.server}-v"[:15]
        _run("ip", "link", "add", veth_c, "type", "veth", "peer", "name", veth_s)
        for ns, dev, ip in ((self.client, veth_c, CLIENT_IP), (self.server, veth_s, SERVER_IP)):
            _run("ip", "link", "set", dev, "netns", ns)
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")

    def start(self, ns: str, *argv: str, log: Path) -> None:
        with log.open("wb") as out:
            self.processes.append(
                subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=out)
            )

    def fetch(self, ns: str, url: str, *, as_uid: int | None = None) -> int:
        prefix = ["setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups"]
        argv = ["ip", "netns", "exec", ns, *(prefix if as_uid else []), sys.executable]
        return int(_run(*argv, "-c", _FETCH, url).strip() or 0)

    def wait_for(self, ns: str, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_status = _run(
                "ip", "netns", "exec", ns, sys.executable, "-c", _FETCH, url, check=False
            )
            if with_status.strip() == "200":
                return
            time.sleep(0.3)
        raise TimeoutError(f"{url} in {ns} never answered 200")

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        for ns in (self.client, self.server):
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


def _injected_pod(config: InjectionConfig) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "labels": {"app": "web"},
            "annotations": {
                "sidecar.meshguard.io/mtlsMode": "PERMISSIVE",
                "traffic.sidecar.meshguard.io/excludeInboundPorts": "9100",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "w",
                    "ports": [{"containerPort": 8080}, {"containerPort": 9100}],
                }
            ]
        },
    }
    return inject(pod, "default", config).pod


async def _write_svid(directory: Path) -> None:
    tokens = ServiceAccountIssuer.create()
    ca = await start_ca(directory / "ca", tokens, default_ttl=datetime.timedelta(hours=1))
    try:
        svid, bundle = await fetch_svid(ca.endpoint(), tokens.token("default", "web"), 0)
    finally:
        await ca.stop()
    out = directory / "sds"
    sds.write_sds_resources(out)
    sds.write_svid(out, svid, bundle)
    for path in (out, *out.iterdir()):
        os.chown(path, 1337, 1337)


async def test_inbound_capture_exclusions_and_no_loop(netns: Namespaces, workdir: Path) -> None:
    await _write_svid(workdir)
    config = InjectionConfig(
        authz_address="127.0.0.1:9001",
        ratelimit_address="127.0.0.1:1",  # down: fails open, the test is about capture
        sds_dir=str(workdir / "sds"),
    )
    pod = _injected_pod(config)
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "meshguard-proxy")
    bootstrap = {e["name"]: e.get("value") for e in proxy["env"]}["MESHGUARD_ENVOY_BOOTSTRAP"]
    (workdir / "envoy.json").write_text(bootstrap)
    (workdir / "policy.yaml").write_text(POLICY)
    rules = next(c for c in pod["spec"]["initContainers"] if c["name"] == "meshguard-init")

    server = netns.server
    for port in (8080, 9100):
        netns.start(
            server,
            sys.executable,
            "-m",
            "http.server",
            "--directory",
            str(workdir),
            str(port),
            log=workdir / f"app-{port}.log",
        )
    meshguard = str(Path(sys.executable).with_name("meshguard"))
    netns.start(
        server,
        meshguard,
        "authz",
        "serve",
        "--policies",
        str(workdir / "policy.yaml"),
        "--host",
        "127.0.0.1",
        "--grpc-port",
        "9001",
        "--admin-port",
        "9002",
        log=workdir / "authz.log",
    )
    netns.start(
        server,
        "setpriv",
        "--reuid=1337",
        "--regid=1337",
        "--clear-groups",
        str(envoy_binary()),
        "-c",
        str(workdir / "envoy.json"),
        "--concurrency",
        "1",
        "--disable-hot-restart",
        log=workdir / "envoy.log",
    )
    netns.wait_for(server, "http://127.0.0.1:9002/readyz")
    netns.wait_for(server, "http://127.0.0.1:15000/ready")
    _run("ip", "netns", "exec", server, "sh", "-c", rules["command"][2])

    client = netns.client
    # Captured: the sidecar answers, authz decides (an app 404 would mean no capture).
    assert netns.fetch(client, f"http://{SERVER_IP}:8080/closed") == 403
    # Allowed requests reach the app through Envoy: Envoy's own connection (uid 1337) to the
    # app is not captured again.
    assert netns.fetch(client, f"http://{SERVER_IP}:8080/open") == 404  # the app's answer
    # Excluded port: straight to the app, authz never sees it.
    assert netns.fetch(client, f"http://{SERVER_IP}:9100/closed") == 404

    # Outbound, from inside the pod to a plain-text server in the other namespace.
    netns.start(
        client,
        sys.executable,
        "-m",
        "http.server",
        "--directory",
        str(workdir),
        "8081",
        log=workdir / "outside.log",
    )
    netns.wait_for(client, "http://127.0.0.1:8081/policy.yaml")
    outside = f"http://{CLIENT_IP}:8081/policy.yaml"
    # The proxy's own uid goes straight out (uid 1337 returns first).
    assert netns.fetch(server, outside, as_uid=1337) == 200
    # The app's call is captured by the outbound listener, which originates mTLS: a plain-text
    # destination cannot speak it (503), the proof the call went through Envoy.
    assert netns.fetch(server, outside) == 503
    stats_text = _run(
        "ip",
        "netns",
        "exec",
        server,
        sys.executable,
        "-c",
        "import urllib.request;print(urllib.request.urlopen("
        "'http://127.0.0.1:15000/stats?format=json').read().decode())",
    )
    stats = {s["name"]: s.get("value") for s in json.loads(stats_text)["stats"] if "name" in s}
    assert stats["http.inbound_8080.ext_authz.denied"] == 1
    assert stats["http.inbound_8080.ext_authz.ok"] == 1  # exactly one check: no loop
    assert stats.get("http.inbound_9100.ext_authz.ok", 0) == 0
    # One captured request, one upstream connection attempt: Envoy's own mTLS connection
    # (uid 1337) was not captured again.
    assert stats["http.outbound.downstream_rq_total"] == 1
    assert stats["cluster.outbound|original-dst.upstream_cx_total"] == 1
