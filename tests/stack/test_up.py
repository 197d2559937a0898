"""``meshguard up``: a real Envoy with authz and ratelimit in front of the demo upstream, driven
as a newcomer would, with the tokens it prints; and the mesh beside it (CA, two injected
sidecars), driven with the mTLS curl it prints."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


class Stack:
    def __init__(self, proc: subprocess.Popen[str], banner: str) -> None:
        self.proc = proc
        found = re.search(r"curl -i (http://[\d.:]+)/", banner)
        assert found, banner
        self.url = found.group(1)
        self.tokens = dict(re.findall(r"export (\w+)=(\S+)", banner))
        mesh = re.search(r'-H "x-envoy-original-dst-host: ([\d.:]+)" (http://[\d.:]+)/mesh', banner)
        assert mesh, banner
        self.web_sidecar, self.frontend_sidecar = mesh.groups()

    def get(
        self, path: str, token: str | None = None, *, base: str | None = None, **headers: str
    ) -> tuple[int, bytes]:
        request = urllib.request.Request((base or self.url) + path, headers=headers)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


STARTUP_BUDGET = 15.0  # seconds to the banner; typically ~4 on a quiet machine


@pytest.fixture
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshguard.cli", "up", "--port", "0", "--envoy-admin-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    try:
        assert lines and lines[-1].startswith("Ctrl-C"), "".join(lines)
        assert time.monotonic() - started < STARTUP_BUDGET
        yield Stack(proc, "".join(lines))
    finally:
        # SIGTERM lets `meshguard up` stop its children (the agents stop their Envoys); a
        # SIGKILL would orphan the whole stack and its inotify watches.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_authz_decisions_through_envoy(stack: Stack) -> None:
    user, admin = stack.tokens["USER_TOKEN"], stack.tokens["ADMIN_TOKEN"]
    status, body = stack.get("/")
    assert status == 200 and json.loads(body)["upstream"] == "meshguard-demo"
    assert stack.get("/internal/x")[0] == 403
    status, body = stack.get("/api/orders")
    assert (status, body) == (403, b"RBAC: access denied")
    assert stack.get("/api/orders", "not-a-jwt")[0] == 401
    assert stack.get("/admin/", user)[0] == 403
    assert stack.get("/admin/", admin)[0] == 200

    status, body = stack.get("/api/orders", user)
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert status == 200
    assert headers["x-user"] == "alice", "claim copied to a header by the RequestAuthentication"
    assert "authorization" not in headers, "the token is stripped before the upstream"


def test_rate_limit_then_clean_shutdown(stack: Stack) -> None:
    statuses = [stack.get("/public/page")[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert stack.get("/")[0] == 200, "only /public/ is rate limited"

    user = stack.tokens["USER_TOKEN"]
    per_user = [stack.get("/api/orders", user, **{"x-user-id": "bob"})[0] for _ in range(11)]
    assert per_user == [200] * 10 + [429]
    assert stack.get("/api/orders", user, **{"x-user-id": "carol"})[0] == 200, "own counter"
    assert stack.get("/api/orders", user)[0] == 200, "no header, no descriptor, no limit"

    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=20) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(stack.url, timeout=2)


def test_mesh_identity_reaches_authz_as_source_principal(stack: Stack) -> None:
    """frontend's sidecar -> mTLS -> web's sidecar (generated bootstrap) -> authz -> upstream."""
    status, body = stack.get(
        "/mesh/hello",
        base=stack.frontend_sidecar,
        **{"x-envoy-original-dst-host": stack.web_sidecar},
    )
    assert status == 200, body
    xfcc = json.loads(body)["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/demo/sa/frontend" in xfcc
    assert "By=spiffe://cluster.local/ns/demo/sa/web" in xfcc
    # The policy allows /mesh/* to that principal only: the ingress path has no peer identity.
    assert stack.get("/mesh/hello")[0] == 403
    # STRICT: plain text to web's sidecar is refused at the TLS layer.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{stack.web_sidecar}/mesh/hello", timeout=5)
