"""``webhook serve`` flags: the decision-log sampling rates, as authz takes them."""

from __future__ import annotations

import argparse

import pytest

from meshguard.webhook import settings


def parse(*argv: str) -> settings.WebhookSettings:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return settings.from_args(parser.parse_args(["--tls-cert", "c", "--tls-key", "k", *argv]))


def test_sampling_defaults_log_denials_only() -> None:
    parsed = parse()
    assert (parsed.log_allow_sample, parsed.log_deny_sample) == (0.0, 1.0)


def test_sampling_rates_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGUARD_LOG_DENY_SAMPLE", "0.5")
    parsed = parse("--log-allow-sample", "0.01")
    assert (parsed.log_allow_sample, parsed.log_deny_sample) == (0.01, 0.5)


@pytest.mark.parametrize("text", ["-0.1", "1.5", "all"])
def test_rates_outside_0_1_are_refused(text: str) -> None:
    with pytest.raises(SystemExit):
        parse("--log-allow-sample", text)
