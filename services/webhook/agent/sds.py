"""Files Envoy reads through file-based SDS in a watched directory (see envoy-notes).

``default.yaml`` and ``ROOTCA.yaml`` are SDS resources written once; they point at
``cert-chain.pem``/``key.pem`` and ``root-cert.pem`` in the same directory, which rotation
replaces by atomic renames. Envoy watches the directory and swaps certificates without a
restart. The key is written before the certificate, so a reader never sees a certificate whose
key is still missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from meshguard.webhook.agent.identity import Svid

CERT_CHAIN = "cert-chain.pem"
KEY = "key.pem"
ROOT_CERT = "root-cert.pem"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
CERT_SECRET = "default"
ROOT_SECRET = "ROOTCA"


def sds_resource_path(directory: Path, secret: str) -> Path:
    return directory / f"{secret}.yaml"


def write_sds_resources(directory: Path) -> None:
    """The two SDS resource files; the same content every time (idempotent)."""
    directory.mkdir(parents=True, exist_ok=True)
    watched = {"path": str(directory)}
    certificate = {
        "@type": SECRET_TYPE,
        "name": CERT_SECRET,
        "tls_certificate": {
            "certificate_chain": {"filename": str(directory / CERT_CHAIN)},
            "private_key": {"filename": str(directory / KEY)},
            "watched_directory": watched,
        },
    }
    root = {
        "@type": SECRET_TYPE,
        "name": ROOT_SECRET,
        "validation_context": {
            "trusted_ca": {"filename": str(directory / ROOT_CERT)},
            "watched_directory": watched,
        },
    }
    for secret, resource in ((CERT_SECRET, certificate), (ROOT_SECRET, root)):
        write_atomic(
            sds_resource_path(directory, secret),
            yaml.safe_dump({"resources": [resource]}).encode(),
        )


def write_svid(directory: Path, svid: Svid, root_bundle: str) -> None:
    """Replace the key, chain and root bundle; each file appears complete or not at all."""
    write_atomic(directory / ROOT_CERT, root_bundle.encode("ascii"))
    write_atomic(directory / KEY, svid.key_pem, mode=0o600)
    write_atomic(directory / CERT_CHAIN, svid.chain_pem)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
