from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshguard.common import spiffe
from tests.harness.tlsgen import CertificateAuthority, san_uris


def test_server_cert_covers_localhost_and_is_signed_by_the_ca(
    tls_ca: CertificateAuthority,
) -> None:
    cert = tls_ca.issue_server().certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(tls_ca.cert)


def test_workload_cert_carries_a_parseable_spiffe_id(tls_ca: CertificateAuthority) -> None:
    cert = tls_ca.issue_workload("spiffe://cluster.local/ns/shop/sa/cart").certificate
    (uri,) = san_uris(cert)
    assert spiffe.parse(uri).service_account == "cart"
    cert.verify_directly_issued_by(tls_ca.cert)


def test_write_puts_pem_files_in_place(tls_ca: CertificateAuthority, tmp_path: Path) -> None:
    issued = tls_ca.issue_server()
    files = issued.write(tmp_path / "d", "srv", ca=tls_ca)
    assert files.cert == tmp_path / "d" / "srv.crt"
    assert files.cert.read_bytes() == issued.cert_pem
    assert files.key is not None and files.key.read_bytes() == issued.key_pem
    assert files.ca is not None and files.ca.read_bytes() == tls_ca.cert_pem
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["ca.crt", "srv.crt", "srv.key"]
