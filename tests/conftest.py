"""Shared fixtures: free ports, generated TLS material, real Envoy and redis-server processes.

Each process fixture stops what it started at teardown, also when the test failed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshguard.common import netutil
from meshguard.common.tls import TlsFiles
from tests.harness.tlsgen import CertificateAuthority


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Call it for a free localhost TCP port, distinct from the others this test got."""
    given: set[int] = set()

    def pick() -> int:
        while (port := netutil.free_port()) in given:
            pass
        given.add(port)
        return port

    return pick


@pytest.fixture(scope="session")
def tls_ca() -> CertificateAuthority:
    """A CA shared by the session (tests that rotate CAs create their own)."""
    return CertificateAuthority.create()


@pytest.fixture
def server_tls(tls_ca: CertificateAuthority, tmp_path: Path) -> TlsFiles:
    """server.crt/server.key for localhost and 127.0.0.1, with ca.crt, in tmp_path/tls."""
    return tls_ca.issue_server().write(tmp_path / "tls", "server", ca=tls_ca)


@pytest.fixture
def client_tls(tls_ca: CertificateAuthority, tmp_path: Path) -> TlsFiles:
    """A workload client cert for spiffe://cluster.local/ns/default/sa/client, with ca.crt."""
    issued = tls_ca.issue_workload("spiffe://cluster.local/ns/default/sa/client")
    return issued.write(tmp_path / "tls", "client", ca=tls_ca)
