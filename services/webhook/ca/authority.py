"""The signing side of the mesh CA: an issuer key pair and the X.509-SVID profile it signs.

The profile is Istio's workload certificate (reference 7.3): empty subject, the SPIFFE URI as the
only SAN (critical, because the subject is empty), CA:FALSE, serverAuth + clientAuth, a random
128-bit serial, two minutes of clock-skew grace and a lifetime clamped to the issuer's. Only the
CSR's public key is used: whatever names the CSR asks for are ignored, because the identity has
already been decided from the caller's verified token.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshguard.common.spiffe import SpiffeId

CLOCK_SKEW = datetime.timedelta(minutes=2)
DEFAULT_ROOT_VALIDITY = datetime.timedelta(days=3650)

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CsrError(ValueError):
    """The CSR cannot be used (unparsable, bad signature, unsupported key)."""


class TtlError(ValueError):
    """The requested lifetime is above the CA's maximum."""


class IssuerExpired(RuntimeError):
    """The issuing certificate is no longer valid: nothing it signs would verify."""


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedChain:
    """A signed leaf and the chain to serve with it (leaf first, root last), one PEM each."""

    pems: tuple[str, ...]
    not_after: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Issuer:
    """A CA certificate, its key, the intermediates above it and the trust anchors."""

    cert: x509.Certificate
    key: SigningKey = dataclasses.field(repr=False)
    intermediates: tuple[x509.Certificate, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if _public_der(self.key.public_key()) != _public_der(self.cert.public_key()):
            raise ValueError("the CA key does not match the CA certificate")
        if not self.roots:
            # A self-signed issuer is its own trust anchor.
            object.__setattr__(self, "roots", (self.cert,))

    @property
    def root_bundle(self) -> str:
        return "".join(_pem(c) for c in self.roots)

    def sign(
        self,
        csr_pem: str,
        spiffe_id: SpiffeId,
        ttl: datetime.timedelta,
        *,
        now: datetime.datetime | None = None,
    ) -> IssuedChain:
        """Sign the CSR's public key for ``spiffe_id``; the caller has checked ``ttl``."""
        now = now or datetime.datetime.now(datetime.UTC)
        issuer_end = self.cert.not_valid_after_utc
        if issuer_end <= now:
            raise IssuerExpired(f"the CA certificate expired at {issuer_end.isoformat()}")
        public_key = _csr_public_key(csr_pem)
        san = x509.UniformResourceIdentifier(str(spiffe_id))
        return self._issue(public_key, [san], min(now + ttl, issuer_end), now)

    def serving_certificate(
        self, hosts: list[str], *, valid_for: datetime.timedelta = datetime.timedelta(days=365)
    ) -> tuple[bytes, bytes]:
        """A fresh key and chain for the CA's own gRPC endpoint (DNS names and IPs in
        ``hosts``), so agents verify the CA with the root bundle they already trust."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        not_after = min(now + valid_for, self.cert.not_valid_after_utc)
        chain = self._issue(key.public_key(), sans, not_after, now)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_pem, "".join(chain.pems).encode("ascii")

    def _issue(
        self,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        sans: list[x509.GeneralName],
        not_after: datetime.datetime,
        now: datetime.datetime,
    ) -> IssuedChain:
        key_usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            # Key encipherment only means something for RSA key transport.
            key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            # Critical because the subject is empty (RFC 5280, X.509-SVID).
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = [leaf, *self.intermediates]
        if self.cert not in self.roots:
            chain.insert(1, self.cert)
        pems = tuple(_pem(c) for c in chain) + tuple(_pem(r) for r in self.roots)
        return IssuedChain(pems, not_after)


def generate_root(
    trust_domain: str,
    *,
    valid_for: datetime.timedelta = DEFAULT_ROOT_VALIDITY,
    now: datetime.datetime | None = None,
) -> Issuer:
    """A self-signed EC P-256 root for development (production loads one from a Secret)."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, "meshguard mesh CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + valid_for)
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
    return Issuer(cert, key)


def load_issuer(cert_file: Path, key_file: Path, root_file: Path | None = None) -> Issuer:
    """Load ``ca-cert.pem`` (the issuer, optionally followed by its intermediates), its key and,
    for an intermediate issuer, the root bundle."""
    certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key_file}: the CA key must be EC or RSA")
    roots = tuple(x509.load_pem_x509_certificates(root_file.read_bytes())) if root_file else ()
    return Issuer(certs[0], key, tuple(certs[1:]), roots)


def write_issuer(issuer: Issuer, cert_file: Path, key_file: Path) -> None:
    """Persist a generated root so a restarted development CA keeps its identity."""
    key_pem = issuer.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    cert_file.write_text(_pem(issuer.cert))


def _csr_public_key(csr_pem: str) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise CsrError("the CSR is not a PEM certificate signing request") from None
    try:
        valid = csr.is_signature_valid
    except InvalidSignature:
        valid = False
    if not valid:
        raise CsrError("the CSR signature does not verify")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key
    raise CsrError("the CSR key must be EC or RSA of at least 2048 bits")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _public_der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
