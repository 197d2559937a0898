"""``meshguard ca serve`` settings: flags and environment into one typed object."""

from __future__ import annotations

import argparse
import datetime

import pytest

from meshguard.webhook.ca import settings
from meshguard.webhook.injection.decision import namespace_selectors


def _parse(*argv: str) -> settings.CaSettings:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return settings.from_args(parser.parse_args(argv))


def test_defaults_are_typed() -> None:
    parsed = _parse("--generated-root-dir", "/tmp/x")
    assert parsed.default_ttl == datetime.timedelta(hours=24)
    assert parsed.max_ttl == datetime.timedelta(days=90)
    assert parsed.token_verifier == "tokenreview"
    assert "localhost" in parsed.serving_hosts


def test_explicit_ttls_and_hosts() -> None:
    parsed = _parse(
        "--generated-root-dir", "/tmp/x", "--default-ttl", "60", "--serving-host", "ca.local"
    )
    assert parsed.default_ttl == datetime.timedelta(seconds=60)
    assert parsed.serving_hosts == ("ca.local",)


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("--generated-root-dir", "/x", "--ca-cert", "/c"),
        ("--generated-root-dir", "/x", "--token-verifier", "issuer-keys"),
        ("--generated-root-dir", "/x", "--token-verifier", "magic"),
    ],
)
def test_inconsistent_settings_are_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_root_publishing_selectors() -> None:
    default = _parse("--generated-root-dir", "/x").publish_root_cert_selectors
    assert default == namespace_selectors()
    given = _parse(
        "--generated-root-dir", "/x", "--publish-root-cert-selectors", "mesh=enabled; team=x,!a"
    )
    assert given.publish_root_cert_selectors == ("mesh=enabled", "team=x,!a")
    with pytest.raises(SystemExit):
        _parse("--generated-root-dir", "/x", "--publish-root-cert-selectors", " ; ")
