"""TLS contexts built from PEM files, and reloaded when the files change.

Certificates in a mesh live for hours, so a server that reads its key pair once stops working
after the first rotation. ``ReloadingTls`` polls the files (resolved symlinks, inodes and mtimes,
so atomic renames and Kubernetes ``..data`` symlink swaps are seen) and builds a fresh
``ssl.SSLContext`` from each new, valid set. A server keeps the one context object it was given
(``ReloadingTls.server_context()``); every new handshake is switched to the latest context, so
rotation needs no restart and in-flight connections keep their session. A broken or half-written
replacement is rejected with the file and the reason, and the previous certificate keeps serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from prometheus_client import Counter

from meshguard.common.sources import fingerprint

log = logging.getLogger(__name__)

RELOAD_ERRORS = Counter(
    "meshguard_tls_reload_errors_total",
    "Changed TLS files that were rejected (the previous certificate kept serving).",
    ["file"],
)


class TlsError(Exception):
    """TLS files that cannot be used; the message names the file and what is wrong with it."""


class ClientAuth(enum.Enum):
    """Whether a server asks for and verifies client certificates (mTLS)."""

    NONE = "none"
    OPTIONAL = "optional"  # verified when presented, connections without one are accepted
    REQUIRED = "required"


@dataclasses.dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where a TLS identity lives: a PEM certificate chain, its key, and the CA bundle to trust.

    Servers need ``cert`` and ``key``; clients may have neither (no client certificate). ``ca``
    is what peers must chain to: client certificates for a server, the server for a client
    (None there means the system's trust store).
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TlsError("a certificate and its private key must be configured together")

    def paths(self) -> list[Path]:
        return [p for p in (self.cert, self.key, self.ca) if p is not None]


@dataclasses.dataclass(frozen=True, slots=True)
class TlsMaterial:
    """The bytes of one consistent read of ``TlsFiles``: what a context was built from."""

    cert_chain: bytes | None
    private_key: bytes | None = dataclasses.field(repr=False)
    ca: bytes | None


def read_material(files: TlsFiles) -> TlsMaterial:
    """Read and check the files: PEM certificates, a private key that matches the certificate."""
    cert = key = ca = None
    if files.cert is not None and files.key is not None:
        cert, key = _read(files.cert, "certificate"), _read(files.key, "private key")
        leaf = _certificates(cert, files.cert)[0]
        if _public_der(_private_key(key, files.key).public_key()) != _public_der(leaf.public_key()):
            raise TlsError(f"{files.key}: private key does not match certificate {files.cert}")
    if files.ca is not None:
        ca = _read(files.ca, "CA bundle")
        _certificates(ca, files.ca)
    return TlsMaterial(cert, key, ca)


def server_context(
    material: TlsMaterial, client_auth: ClientAuth = ClientAuth.NONE
) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_auth`` it verifies clients against ``ca``."""
    if material.cert_chain is None or material.private_key is None:
        raise TlsError("a TLS server needs a certificate and a private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_key_pair(context, material.cert_chain, material.private_key)
    if client_auth is not ClientAuth.NONE:
        if material.ca is None:
            raise TlsError("verifying client certificates needs a CA bundle")
        context.load_verify_locations(cadata=_pem_text(material.ca))
        context.verify_mode = (
            ssl.CERT_REQUIRED if client_auth is ClientAuth.REQUIRED else ssl.CERT_OPTIONAL
        )
    return context


def client_context(material: TlsMaterial) -> ssl.SSLContext:
    """A verifying client context: trusts ``ca`` (or the system store) and may present a cert."""
    cadata = _pem_text(material.ca) if material.ca is not None else None
    context = ssl.create_default_context(cadata=cadata)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if material.cert_chain is not None and material.private_key is not None:
        _load_key_pair(context, material.cert_chain, material.private_key)
    return context


class ReloadingTls:
    """An SSL context kept in step with its files; see the module docstring for how.

    Construction reads the files and fails fast (TlsError) when they are unusable. Call
    ``reload_if_changed()`` or run ``watch()`` on the event loop that serves the connections.
    """

    def __init__(
        self,
        files: TlsFiles,
        build: Callable[[TlsMaterial], ssl.SSLContext],
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self.files = files
        self.poll_interval = poll_interval
        self._build = build
        self._seen = fingerprint(files.paths())
        self._material = read_material(files)
        self._current = build(self._material)
        self._front: ssl.SSLContext | None = None
        self.reloads = 0

    @classmethod
    def server(
        cls,
        files: TlsFiles,
        client_auth: ClientAuth = ClientAuth.NONE,
        *,
        poll_interval: float = 1.0,
    ) -> ReloadingTls:
        build = functools.partial(server_context, client_auth=client_auth)
        return cls(files, build, poll_interval=poll_interval)

    @classmethod
    def client(cls, files: TlsFiles, *, poll_interval: float = 1.0) -> ReloadingTls:
        return cls(files, client_context, poll_interval=poll_interval)

    @property
    def current(self) -> ssl.SSLContext:
        """The context built from the latest valid files; clients take it per connection."""
        return self._current

    @property
    def material(self) -> TlsMaterial:
        return self._material

    def server_context(self) -> ssl.SSLContext:
        """The one context to hand a server; each new handshake switches to ``current``.

        The switch happens in the ClientHello callback (called with or without SNI), which
        swaps certificate, key and client CA together, so a handshake never sees a mix.
        """
        if self._front is None:
            front = self._current
            front.sni_callback = self._select_current
            self._front = front
        return self._front

    def _select_current(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        if connection.context is not self._current:
            connection.context = self._current

    def reload_if_changed(self) -> bool:
        """Rebuild the context when any file changed; True when a new one is now current.

        An unusable new set is logged (file and reason, never key bytes) and skipped until the
        files change again; the previous context stays current.
        """
        seen = fingerprint(self.files.paths())
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            material = read_material(self.files)
            context = self._build(material)
        except TlsError as exc:
            RELOAD_ERRORS.labels(str(self.files.paths()[0])).inc()
            log.error(
                "TLS files rejected, keeping the previous certificate: %s",
                exc,
                extra={"tls_files": [str(p) for p in self.files.paths()]},
            )
            return False
        self._material, self._current = material, context
        self.reloads += 1
        log.info(
            "TLS files reloaded",
            extra={"tls_files": [str(p) for p in self.files.paths()], "reloads": self.reloads},
        )
        return True

    async def watch(self) -> None:
        """Poll the files every ``poll_interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.poll_interval)
            self.reload_if_changed()


def grpc_server_credentials(
    tls: ReloadingTls, *, require_client_auth: bool = False
) -> grpc.ServerCredentials:
    """gRPC server credentials that pick up every reload of ``tls`` for new connections.

    gRPC asks for a certificate configuration before each handshake, on its own threads; the
    answer comes from memory (the last material ``tls`` loaded), never from disk, so run
    ``tls.watch()`` alongside the server.
    """
    if require_client_auth and tls.material.ca is None:
        raise TlsError("verifying client certificates needs a CA bundle")
    served = tls.material

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        nonlocal served
        material = tls.material
        if material is served:
            return None
        served = material
        return _grpc_configuration(material)

    return grpc.dynamic_ssl_server_credentials(
        _grpc_configuration(served), fetch, require_client_authentication=require_client_auth
    )


def _grpc_configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    if material.cert_chain is None or material.private_key is None:
        raise TlsError("a TLS server needs a certificate and a private key")
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.cert_chain)], root_certificates=material.ca
    )


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"{path}: {what} file does not exist") from None
    except OSError as exc:
        raise TlsError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if not data.strip():
        raise TlsError(f"{path}: {what} file is empty")
    return data


def _pem_text(pem: bytes) -> str:
    # ``ssl`` wants ASCII text; bundles may carry non-ASCII comment lines between PEM blocks.
    lines = pem.decode("utf-8", errors="replace").splitlines()
    return "\n".join(line for line in lines if line.isascii())


def _certificates(data: bytes, path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsError(f"{path}: not a PEM certificate (or a truncated one)") from None
    return certs


def _private_key(data: bytes, path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # The library's message describes the format problem; it never contains key bytes.
        raise TlsError(f"{path}: not a usable unencrypted PEM private key ({exc})") from None


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_key_pair(context: ssl.SSLContext, cert_chain: bytes, private_key: bytes) -> None:
    # ``load_cert_chain`` only reads files; loading the exact bytes that were checked (not the
    # configured paths again) keeps a rotation in progress from slipping a mismatched pair in.
    with tempfile.TemporaryDirectory(prefix="meshguard-tls-") as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert_chain)
        key_file.touch(mode=0o600)
        key_file.write_bytes(private_key)
        try:
            context.load_cert_chain(cert_file, key_file)
        except ssl.SSLError as exc:
            raise TlsError(
                f"certificate and key rejected by OpenSSL: {exc.reason or exc}"
            ) from None
