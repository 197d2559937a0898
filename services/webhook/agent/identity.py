"""The workload's key and certificate: made in the pod, the key never leaves it.

A fresh EC P-256 key per request, kept in memory until it is written (mode 0600) next to its
certificate for Envoy. The CSR carries no names: the CA decides the identity from the token.
"""

from __future__ import annotations

import dataclasses
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclasses.dataclass(frozen=True, slots=True)
class KeyAndCsr:
    key_pem: bytes = dataclasses.field(repr=False)
    csr_pem: str


@dataclasses.dataclass(frozen=True, slots=True)
class Svid:
    """An X.509-SVID as the CA returned it, with the key it was issued for."""

    spiffe_id: str
    cert_chain: tuple[str, ...]  # leaf first, root last
    key_pem: bytes = dataclasses.field(repr=False)
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def chain_pem(self) -> bytes:
        """What Envoy serves: the leaf and intermediates (the root is the peer's to have)."""
        served = self.cert_chain[:-1] if len(self.cert_chain) > 1 else self.cert_chain
        return "".join(served).encode("ascii")

    @property
    def lifetime(self) -> datetime.timedelta:
        return self.not_after - self.not_before


def new_key_and_csr() -> KeyAndCsr:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyAndCsr(key_pem, csr.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def svid_from_chain(spiffe_id: str, cert_chain: list[str], key_pem: bytes) -> Svid:
    if not cert_chain:
        raise ValueError("the CA returned an empty certificate chain")
    leaf = x509.load_pem_x509_certificate(cert_chain[0].encode("ascii"))
    return Svid(
        spiffe_id,
        tuple(cert_chain),
        key_pem,
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
    )
