from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from meshguard.common.tls import (
    ClientAuth,
    ReloadingTls,
    TlsError,
    TlsFiles,
    TlsMaterial,
    client_context,
    grpc_server_credentials,
    read_material,
    server_context,
)
from tests.harness.tlsgen import CertificateAuthority, Issued, san_uris, write_atomic

# --- reading and checking files ------------------------------------------------------------


def test_read_material_returns_the_file_bytes(server_tls: TlsFiles) -> None:
    material = read_material(server_tls)
    assert server_tls.cert is not None and server_tls.ca is not None
    assert material.cert_chain == server_tls.cert.read_bytes()
    assert material.ca == server_tls.ca.read_bytes()
    assert "private_key" not in repr(material)


def test_missing_file_is_named(server_tls: TlsFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(TlsError, match=rf"^{missing}: private key file does not exist$"):
        read_material(TlsFiles(server_tls.cert, missing))


def test_unreadable_file_is_named(server_tls: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=rf"^{tmp_path}: cannot read CA bundle"):
        read_material(TlsFiles(server_tls.cert, server_tls.key, tmp_path))


def test_empty_and_garbage_files_are_named(server_tls: TlsFiles, tmp_path: Path) -> None:
    empty, garbage = tmp_path / "empty.pem", tmp_path / "garbage.pem"
    empty.write_bytes(b"\n")
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(TlsError, match=rf"^{empty}: certificate file is empty$"):
        read_material(TlsFiles(empty, server_tls.key))
    with pytest.raises(TlsError, match=rf"^{garbage}: not a PEM certificate"):
        read_material(TlsFiles(garbage, server_tls.key))
    with pytest.raises(TlsError, match=rf"^{garbage}: not a usable unencrypted PEM private key"):
        read_material(TlsFiles(server_tls.cert, garbage))


def test_key_that_does_not_match_the_certificate(
    server_tls: TlsFiles, tls_ca: CertificateAuthority, tmp_path: Path
) -> None:
    other = tls_ca.issue_server().write(tmp_path / "other", "server")
    with pytest.raises(TlsError, match=rf"^{other.key}: private key does not match certificate"):
        read_material(TlsFiles(server_tls.cert, other.key))


def test_ca_bundle_with_non_ascii_comments(
    server_tls: TlsFiles, tls_ca: CertificateAuthority
) -> None:
    assert server_tls.ca is not None
    server_tls.ca.write_bytes("# Émetteur: test\n".encode() + tls_ca.cert_pem)
    material = read_material(server_tls)
    assert server_context(material, ClientAuth.REQUIRED).verify_mode is ssl.CERT_REQUIRED
    assert client_context(material).verify_mode is ssl.CERT_REQUIRED


def test_certificate_and_key_go_together(server_tls: TlsFiles) -> None:
    with pytest.raises(TlsError, match="configured together"):
        TlsFiles(cert=server_tls.cert)


def test_server_needs_a_key_pair_and_mtls_needs_a_ca(server_tls: TlsFiles) -> None:
    material = read_material(server_tls)
    with pytest.raises(TlsError, match="needs a certificate and a private key"):
        server_context(TlsMaterial(None, None, material.ca))
    with pytest.raises(TlsError, match="needs a CA bundle"):
        server_context(
            TlsMaterial(material.cert_chain, material.private_key, None), ClientAuth.REQUIRED
        )


# --- handshakes against a real asyncio TLS server ------------------------------------------


class EchoServer:
    """Accepts TLS connections, records the client's certificate, answers b"hello"."""

    def __init__(self) -> None:
        self.client_certs: list[bytes | None] = []
        self.server: asyncio.Server | None = None

    async def start(self, context: ssl.SSLContext) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        self.client_certs.append(sslobj.getpeercert(binary_form=True))
        writer.write(b"hello")
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def echo_server() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    yield server
    await server.close()


async def handshake(port: int, context: ssl.SSLContext) -> tuple[x509.Certificate, bytes]:
    """Connect, return the server's certificate and what it sent before closing."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return x509.load_der_x509_certificate(der), data


def trusting(*cas: CertificateAuthority) -> ssl.SSLContext:
    return client_context(TlsMaterial(None, None, b"".join(ca.cert_pem for ca in cas)))


async def test_server_and_client_contexts_complete_a_verified_handshake(
    server_tls: TlsFiles, tls_ca: CertificateAuthority, echo_server: EchoServer
) -> None:
    port = await echo_server.start(server_context(read_material(server_tls)))
    cert, data = await handshake(port, trusting(tls_ca))
    assert server_tls.cert is not None
    assert cert == x509.load_pem_x509_certificate(server_tls.cert.read_bytes())
    assert data == b"hello"


async def test_client_refuses_a_server_from_another_ca(
    server_tls: TlsFiles, echo_server: EchoServer
) -> None:
    port = await echo_server.start(server_context(read_material(server_tls)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(port, trusting(CertificateAuthority.create("stranger")))


async def test_mtls_requires_a_client_certificate_from_the_ca(
    server_tls: TlsFiles,
    client_tls: TlsFiles,
    tls_ca: CertificateAuthority,
    echo_server: EchoServer,
) -> None:
    port = await echo_server.start(server_context(read_material(server_tls), ClientAuth.REQUIRED))

    _, data = await handshake(port, client_context(read_material(client_tls)))
    assert data == b"hello"
    presented = echo_server.client_certs[-1]
    assert presented is not None
    assert san_uris(x509.load_der_x509_certificate(presented)) == [
        "spiffe://cluster.local/ns/default/sa/client"
    ]

    # TLS 1.3 reports a rejected client certificate on the first read, not in the handshake.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _, data = await handshake(port, trusting(tls_ca))
        assert data == b"", "the server must not talk to a client without a certificate"
        raise ConnectionError("closed without data")


# --- reloading ----------------------------------------------------------------------------


def rotate(issued: Issued, files: TlsFiles) -> None:
    """Replace key and cert by atomic renames, as cert-manager or the meshguard agent do."""
    assert files.cert is not None and files.key is not None
    write_atomic(files.key, issued.key_pem)
    write_atomic(files.cert, issued.cert_pem)


async def test_new_handshakes_get_the_rotated_certificate_without_restart(
    server_tls: TlsFiles, tls_ca: CertificateAuthority, echo_server: EchoServer
) -> None:
    tls = ReloadingTls.server(server_tls)
    port = await echo_server.start(tls.server_context())
    client = trusting(tls_ca)
    cert_a, _ = await handshake(port, client)

    assert not tls.reload_if_changed(), "nothing changed yet"
    cert_b = tls_ca.issue_server("rotated")
    rotate(cert_b, server_tls)
    assert tls.reload_if_changed()

    served, data = await handshake(port, client)
    assert served == cert_b.certificate != cert_a
    assert data == b"hello"
    assert tls.reloads == 1


async def test_a_broken_replacement_keeps_the_previous_certificate(
    server_tls: TlsFiles,
    tls_ca: CertificateAuthority,
    echo_server: EchoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tls = ReloadingTls.server(server_tls)
    port = await echo_server.start(tls.server_context())
    client = trusting(tls_ca)
    cert_b = tls_ca.issue_server("b")
    rotate(cert_b, server_tls)
    assert tls.reload_if_changed()
    assert server_tls.cert is not None and server_tls.key is not None

    stranger = tls_ca.issue_server("c")
    write_atomic(server_tls.key, stranger.key_pem)  # half a rotation: key of c, cert of b
    rejected = {"file": str(server_tls.cert)}
    before = REGISTRY.get_sample_value("meshguard_tls_reload_errors_total", rejected) or 0.0
    with caplog.at_level(logging.ERROR, logger="meshguard.common.tls"):
        assert not tls.reload_if_changed()
    assert REGISTRY.get_sample_value("meshguard_tls_reload_errors_total", rejected) == before + 1
    assert f"{server_tls.key}: private key does not match certificate" in caplog.text
    assert stranger.key_pem.decode().splitlines()[1] not in caplog.text
    assert (await handshake(port, client))[0] == cert_b.certificate

    write_atomic(server_tls.cert, b"-----BEGIN CERTIFICATE-----\ntruncated")
    assert not tls.reload_if_changed()
    assert not tls.reload_if_changed(), "a rejected set is not retried until files change"
    assert (await handshake(port, client))[0] == cert_b.certificate
    assert tls.material.cert_chain == cert_b.cert_pem

    write_atomic(server_tls.cert, stranger.cert_pem)  # rotation completes
    assert tls.reload_if_changed()
    assert (await handshake(port, client))[0] == stranger.certificate


async def test_configmap_style_symlink_swap_is_picked_up(
    tls_ca: CertificateAuthority, tmp_path: Path, echo_server: EchoServer
) -> None:
    # Kubernetes secret volumes: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/ swapped.
    mount = tmp_path / "mount"
    first, second = tls_ca.issue_server("first"), tls_ca.issue_server("second")
    for version, issued in (("..v1", first), ("..v2", second)):
        issued.write(mount / version, "tls")
    os.symlink("..v1", mount / "..data")
    for name in ("tls.crt", "tls.key"):
        os.symlink(f"..data/{name}", mount / name)
    tls = ReloadingTls.server(TlsFiles(mount / "tls.crt", mount / "tls.key"))
    port = await echo_server.start(tls.server_context())
    assert (await handshake(port, trusting(tls_ca)))[0] == first.certificate

    os.symlink("..v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert tls.reload_if_changed()
    assert (await handshake(port, trusting(tls_ca)))[0] == second.certificate


async def test_rotating_the_client_ca_changes_who_may_connect(
    server_tls: TlsFiles, tls_ca: CertificateAuthority, tmp_path: Path, echo_server: EchoServer
) -> None:
    new_ca = CertificateAuthority.create("new CA")
    old_client = tls_ca.issue_workload("spiffe://td/ns/a/sa/old").write(
        tmp_path / "old", "c", tls_ca
    )
    new_client = new_ca.issue_workload("spiffe://td/ns/a/sa/new").write(
        tmp_path / "new", "c", tls_ca
    )
    tls = ReloadingTls.server(server_tls, ClientAuth.REQUIRED)
    port = await echo_server.start(tls.server_context())
    assert (await handshake(port, client_context(read_material(old_client))))[1] == b"hello"

    assert server_tls.ca is not None
    write_atomic(server_tls.ca, new_ca.cert_pem)
    assert tls.reload_if_changed()
    assert (await handshake(port, client_context(read_material(new_client))))[1] == b"hello"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        if (await handshake(port, client_context(read_material(old_client))))[1] == b"":
            raise ConnectionError("closed without data")


async def test_watch_reloads_an_aiohttp_https_server(server_tls: TlsFiles) -> None:
    # The rotated certificate comes from a CA the client alone trusts: its requests succeed
    # exactly when the server presents the new certificate.
    new_ca = CertificateAuthority.create("new CA")
    tls = ReloadingTls.server(server_tls, poll_interval=0.02)
    app = web.Application()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context()).start()
    url = f"https://localhost:{runner.addresses[0][1]}/"
    watcher = asyncio.create_task(tls.watch())
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(url, ssl=trusting(new_ca))
            rotate(new_ca.issue_server(), server_tls)
            for _ in range(250):
                if tls.reloads:
                    break
                await asyncio.sleep(0.02)
            assert tls.reloads == 1
            async with session.get(url, ssl=trusting(new_ca)) as response:
                assert await response.text() == "ok"
    finally:
        watcher.cancel()
        await runner.cleanup()


def test_client_reloader_swaps_current_context(
    client_tls: TlsFiles, tls_ca: CertificateAuthority
) -> None:
    tls = ReloadingTls.client(client_tls)
    before = tls.current
    rotate(tls_ca.issue_workload("spiffe://cluster.local/ns/default/sa/client"), client_tls)
    assert tls.reload_if_changed()
    assert tls.current is not before
    assert tls.current.verify_mode is ssl.CERT_REQUIRED


def test_construction_fails_fast_on_bad_files(tmp_path: Path, server_tls: TlsFiles) -> None:
    with pytest.raises(TlsError, match="does not exist"):
        ReloadingTls.server(TlsFiles(tmp_path / "x.crt", tmp_path / "x.key"))
    with pytest.raises(TlsError, match="needs a CA bundle"):
        ReloadingTls.server(TlsFiles(server_tls.cert, server_tls.key), ClientAuth.REQUIRED)


# --- gRPC --------------------------------------------------------------------------------


async def test_grpc_server_credentials_follow_reloads(
    server_tls: TlsFiles, tls_ca: CertificateAuthority
) -> None:
    new_ca = CertificateAuthority.create("new CA")
    tls = ReloadingTls.server(server_tls)
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", grpc_server_credentials(tls))
    await server.start()

    async def check(ca: CertificateAuthority) -> bool:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
        async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.aio.AioRpcError as err:
                assert err.code() is grpc.StatusCode.UNAVAILABLE
                return False
            return True

    try:
        assert await check(tls_ca)
        assert not await check(new_ca)
        rotate(new_ca.issue_server(), server_tls)
        assert tls.reload_if_changed()
        assert await check(new_ca)
        assert not await check(tls_ca)
    finally:
        await server.stop(None)
