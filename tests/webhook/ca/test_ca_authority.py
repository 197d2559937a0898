"""The X.509-SVID profile the CA signs (reference 7.3) and how it clamps lifetimes."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshguard.common.spiffe import for_workload
from meshguard.webhook.ca.authority import (
    CsrError,
    IssuerExpired,
    generate_root,
    load_issuer,
    write_issuer,
)

SPIFFE = for_workload("cluster.local", "shop", "web")
NOW = datetime.datetime.now(datetime.UTC)


def _csr(*, uri: str | None = None, common_name: str | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    )
    if uri:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_leaf_follows_the_workload_profile() -> None:
    issuer = generate_root("cluster.local")
    chain = issuer.sign(_csr(), SPIFFE, datetime.timedelta(hours=24), now=NOW)
    leaf = x509.load_pem_x509_certificate(chain.pems[0].encode())
    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/shop/sa/web"
    ]
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert leaf.not_valid_before_utc == (NOW - datetime.timedelta(minutes=2)).replace(microsecond=0)
    assert leaf.not_valid_after_utc == (NOW + datetime.timedelta(hours=24)).replace(microsecond=0)
    assert leaf.serial_number.bit_length() > 64
    leaf.verify_directly_issued_by(issuer.cert)
    assert chain.pems[-1] == issuer.root_bundle


def test_names_asked_for_in_the_csr_are_ignored() -> None:
    issuer = generate_root("cluster.local")
    csr = _csr(uri="spiffe://cluster.local/ns/kube-system/sa/admin", common_name="admin")
    leaf = x509.load_pem_x509_certificate(
        issuer.sign(csr, SPIFFE, datetime.timedelta(hours=1)).pems[0].encode()
    )
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)] == [
        str(SPIFFE)
    ]
    assert leaf.subject == x509.Name([])


def test_lifetime_is_clamped_to_the_issuer() -> None:
    issuer = generate_root("cluster.local", valid_for=datetime.timedelta(hours=2), now=NOW)
    chain = issuer.sign(_csr(), SPIFFE, datetime.timedelta(hours=24), now=NOW)
    assert chain.not_after == issuer.cert.not_valid_after_utc


def test_an_expired_issuer_refuses() -> None:
    past = NOW - datetime.timedelta(days=10)
    issuer = generate_root("cluster.local", valid_for=datetime.timedelta(days=1), now=past)
    with pytest.raises(IssuerExpired):
        issuer.sign(_csr(), SPIFFE, datetime.timedelta(hours=1), now=NOW)


@pytest.mark.parametrize("csr", ["", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END"])
def test_garbage_csr_is_refused(csr: str) -> None:
    with pytest.raises(CsrError, match="not a PEM"):
        generate_root("cluster.local").sign(csr, SPIFFE, datetime.timedelta(hours=1))


def test_tampered_csr_signature_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    # Swap in another public key: the signature no longer matches the request body.
    old = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    new = other.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    start = der.find(old)
    der[start : start + len(old)] = new
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(CsrError, match="signature"):
        generate_root("cluster.local").sign(pem, SPIFFE, datetime.timedelta(hours=1))


def test_generated_root_round_trips_through_files(tmp_path: Path) -> None:
    issuer = generate_root("cluster.local")
    write_issuer(issuer, tmp_path / "ca-cert.pem", tmp_path / "ca-key.pem")
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
    loaded = load_issuer(tmp_path / "ca-cert.pem", tmp_path / "ca-key.pem")
    assert loaded.cert == issuer.cert
    assert loaded.root_bundle == issuer.root_bundle


def test_intermediate_issuer_serves_the_full_chain(tmp_path: Path) -> None:
    root = generate_root("cluster.local")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")])
    inter = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(root.key, hashes.SHA256())
    )
    (tmp_path / "ca-cert.pem").write_bytes(inter.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "root.pem").write_text(root.root_bundle)
    issuer = load_issuer(tmp_path / "ca-cert.pem", tmp_path / "ca-key.pem", tmp_path / "root.pem")
    pems = issuer.sign(_csr(), SPIFFE, datetime.timedelta(hours=1)).pems
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    assert [c.subject for c in certs[1:]] == [inter.subject, root.cert.subject]
    certs[0].verify_directly_issued_by(inter)
    assert issuer.root_bundle == root.root_bundle
