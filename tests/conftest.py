"""Shared fixtures: free ports, generated TLS material, real Envoy and redis-server processes.

Each process fixture stops what it started at teardown, also when the test failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshguard.common import netutil
from meshguard.common.tls import TlsFiles
from tests.harness.envoy import EnvoyFactory
from tests.harness.redis import RedisCluster, RedisFactory, RedisServer
from tests.harness.tlsgen import CertificateAuthority

pytest_plugins = ["pytester"]


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


@pytest.fixture
def envoy() -> Iterator[EnvoyFactory]:
    """``proc = await envoy(config)``: a real Envoy, LIVE, stopped at teardown."""
    factory = EnvoyFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisFactory]:
    """Start redis-servers (``redis_factory()``) and clusters; all stopped at teardown."""
    factory = RedisFactory(tmp_path_factory.mktemp("redis"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def redis_server(redis_factory: RedisFactory) -> RedisServer:
    """A running redis-server on a free localhost port, without persistence."""
    return redis_factory()


@pytest.fixture
def redis_cluster(redis_factory: RedisFactory) -> RedisCluster:
    """A running 3-master Redis Cluster on free localhost ports."""
    return redis_factory.cluster()
