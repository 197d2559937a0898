"""The files Envoy watches: SDS resources pointing at atomically replaced PEM files."""

from __future__ import annotations

import datetime
from pathlib import Path

import yaml

from meshguard.webhook.agent import sds
from meshguard.webhook.agent.identity import Svid

NOW = datetime.datetime.now(datetime.UTC)


def test_sds_resources_reference_the_files_and_watch_the_directory(tmp_path: Path) -> None:
    sds.write_sds_resources(tmp_path)
    default = yaml.safe_load((tmp_path / "default.yaml").read_text())["resources"][0]
    assert default["@type"].endswith("transport_sockets.tls.v3.Secret")
    assert default["name"] == "default"
    tls = default["tls_certificate"]
    assert tls["certificate_chain"]["filename"] == str(tmp_path / "cert-chain.pem")
    assert tls["private_key"]["filename"] == str(tmp_path / "key.pem")
    assert tls["watched_directory"]["path"] == str(tmp_path)
    root = yaml.safe_load((tmp_path / "ROOTCA.yaml").read_text())["resources"][0]
    assert root["name"] == "ROOTCA"
    assert root["validation_context"]["trusted_ca"]["filename"] == str(tmp_path / "root-cert.pem")


def test_svid_files_are_complete_and_the_key_is_private(tmp_path: Path) -> None:
    svid = Svid("spiffe://x/ns/a/sa/b", ("LEAF\n", "MID\n", "ROOT\n"), b"KEY\n", NOW, NOW)
    sds.write_svid(tmp_path, svid, "ROOT\n")
    assert (tmp_path / "cert-chain.pem").read_text() == "LEAF\nMID\n"
    assert (tmp_path / "root-cert.pem").read_text() == "ROOT\n"
    assert (tmp_path / "key.pem").read_bytes() == b"KEY\n"
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*.tmp"))
