"""``meshguard up`` starts a real Envoy in front of the demo upstream and stops it cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest


@pytest.fixture
def stack() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshguard.cli", "up", "--port", "0", "--envoy-admin-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        found = re.search(r"curl -i (http://\S+)", line)
        if found:
            url = found.group(1)
            break
    try:
        assert url, f"no URL printed; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_envoy_forwards_to_demo_upstream_then_stops(
    stack: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = stack
    with urllib.request.urlopen(url + "hello?x=1", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["server"] == "envoy"
        body = json.loads(resp.read())
    assert body["upstream"] == "meshguard-demo"
    assert body["path"] == "/hello?x=1"
    assert "x-request-id" in {k.lower() for k in body["headers"]}, "request went through Envoy"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
