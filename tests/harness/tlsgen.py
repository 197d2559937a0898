"""TLS material for tests, generated with ``cryptography``: a CA, server and SPIFFE client certs.

Keys are EC P-256: fast to generate, so every test can have its own CA.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshguard.common.tls import TlsFiles

_ONE_DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True, slots=True)
class Issued:
    """A certificate (PEM) and its private key (PEM, unencrypted PKCS#8)."""

    cert_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, directory: Path, name: str, ca: CertificateAuthority | None = None) -> TlsFiles:
        """Write ``<name>.crt``/``<name>.key`` (and the CA bundle) atomically into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        write_atomic(key, self.key_pem)
        write_atomic(cert, self.cert_pem)
        return TlsFiles(cert=cert, key=key, ca=ca.write(directory) if ca is not None else None)


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A self-signed root CA that issues leaf certificates."""

    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = dataclasses.field(repr=False)

    @classmethod
    def create(cls, name: str = "meshguard test CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + 30 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, name: str = "ca") -> Path:
        path = directory / f"{name}.crt"
        write_atomic(path, self.cert_pem)
        return path

    def issue(
        self,
        common_name: str,
        *,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        uris: Sequence[str] = (),
        server: bool = True,
        client: bool = True,
        valid_for: datetime.timedelta = 7 * _ONE_DAY,
    ) -> Issued:
        """A leaf certificate with the given subject alternative names and key usages."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        names += [x509.UniformResourceIdentifier(u) for u in uris]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [
            ExtendedKeyUsageOID.CLIENT_AUTH
        ] * client
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if names:
            # SPIFFE SVIDs have an empty subject in practice; the SAN carries the identity.
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)

    def issue_server(self, common_name: str = "localhost") -> Issued:
        """A server certificate valid for ``localhost`` and ``127.0.0.1``."""
        return self.issue(common_name, dns=["localhost"], ips=["127.0.0.1"], client=False)

    def issue_workload(self, spiffe_id: str) -> Issued:
        """A workload certificate (client and server) whose only SAN is the SPIFFE URI."""
        return self.issue(spiffe_id.rsplit("/", 1)[-1], uris=[spiffe_id])


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by renaming a fully written sibling, as cert rotators and kubelet do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def san_uris(cert: x509.Certificate) -> list[str]:
    """The URI subject alternative names of ``cert`` (SPIFFE IDs for workload certs)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in ext.value.get_values_for_type(x509.UniformResourceIdentifier)]
