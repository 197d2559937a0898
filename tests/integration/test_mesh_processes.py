"""The shipped commands as processes: ``meshguard ca serve`` and the sidecar's ``meshguard agent``.

The agent runs with exactly the environment injection put in the sidecar container (ports
moved to free ones): it gets its certificate from the CA process, writes the SDS files, starts
Envoy with the generated bootstrap, and only then reports ready on its status port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from meshguard.common.envoy import envoy_binary
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.inject import inject
from tests.harness.satokens import ServiceAccountIssuer

pytestmark = pytest.mark.timeout(120)
MESHGUARD = str(Path(sys.executable).with_name("meshguard"))


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status(url) == 200:
            return
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{log.read_text()[-3000:]}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_ca_and_agent_processes(
    tmp_path: Path, free_port: Callable[[], int], processes: list[subprocess.Popen[bytes]]
) -> None:
    tokens = ServiceAccountIssuer.create()
    ca_port, ca_admin = free_port(), free_port()
    ca_log = tmp_path / "ca.log"
    with ca_log.open("wb") as out:
        processes.append(
            subprocess.Popen(
                [
                    MESHGUARD,
                    "ca",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--grpc-port",
                    str(ca_port),
                    "--admin-port",
                    str(ca_admin),
                    "--generated-root-dir",
                    str(tmp_path / "ca"),
                    "--token-verifier",
                    "issuer-keys",
                    "--issuer-keys",
                    str(tokens.write_jwks(tmp_path / "jwks.json")),
                    "--token-issuer",
                    tokens.issuer,
                ],
                stdout=out,
                stderr=out,
            )
        )
    _wait(f"http://127.0.0.1:{ca_admin}/readyz", processes[0], ca_log)
    root = tmp_path / "ca" / "ca-cert.pem"
    assert root.exists(), "the development root is generated and kept"

    config = InjectionConfig(
        ca_address=f"127.0.0.1:{ca_port}",
        authz_address="127.0.0.1:1",
        ratelimit_address="127.0.0.1:1",
        inbound_port=free_port(),
        outbound_port=free_port(),
        status_port=free_port(),
        admin_port=free_port(),
        prometheus_port=free_port(),
        sds_dir=str(tmp_path / "sds"),
    )
    pod = {
        "metadata": {"name": "web-1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "w", "ports": [{"containerPort": 8080}]}]},
    }
    proxy = next(
        c
        for c in inject(pod, "shop", config).pod["spec"]["containers"]
        if c["name"] == "meshguard-proxy"
    )
    env = {e["name"]: e["value"] for e in proxy["env"] if "value" in e}
    token = tmp_path / "token"
    token.write_text(tokens.token("shop", "web"))
    env.update(
        MESHGUARD_ROOT_BUNDLE=str(root),  # the ConfigMap mount in a pod
        MESHGUARD_TOKEN_FILE=str(token),  # the projected token in a pod
        MESHGUARD_CA_SERVER_NAME="localhost",
        MESHGUARD_STATUS_HOST="127.0.0.1",
        MESHGUARD_ENVOY_BINARY=str(envoy_binary()),
        MESHGUARD_ENVOY_CONCURRENCY="1",
    )
    agent_log = tmp_path / "agent.log"
    with agent_log.open("wb") as out:
        processes.append(
            subprocess.Popen(
                [MESHGUARD, *proxy["command"][1:]],  # the container runs `meshguard agent`
                env={**os.environ, **env},
                stdout=out,
                stderr=out,
            )
        )
    _wait(f"http://127.0.0.1:{config.status_port}/healthz/ready", processes[1], agent_log)
    leaf = x509.load_pem_x509_certificates((tmp_path / "sds" / "cert-chain.pem").read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/shop/sa/web"
    ]
    # Envoy runs the generated bootstrap and serves the agent's certificate.
    with urllib.request.urlopen(f"http://127.0.0.1:{config.admin_port}/certs", timeout=5) as r:
        assert "spiffe://cluster.local/ns/shop/sa/web" in r.read().decode()
    assert _status(f"http://127.0.0.1:{config.prometheus_port}/stats/prometheus") == 200
