"""The decision log counts every review and logs allowed / denied ones at their own rates."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from meshguard.webhook.admission import AdmissionRequest, Verdict
from meshguard.webhook.decisions import DecisionLog

LOGGER = "meshguard.webhook.server"


def request(kind: str = "VirtualService") -> AdmissionRequest:
    return AdmissionRequest("admission.k8s.io/v1", "u-1", "networking.istio.io", "v1", kind,
                            "CREATE", "shop", False, {})  # fmt: skip


ALLOWED = Verdict(True)
DENIED = Verdict(False, "configuration is invalid: x", 400)


def admissions(kind: str, allowed: bool) -> float:
    labels = {"kind": kind, "operation": "CREATE", "allowed": str(allowed).lower()}
    return REGISTRY.get_sample_value("meshguard_webhook_admissions_total", labels) or 0.0


def test_every_review_is_counted_whatever_is_logged() -> None:
    before = admissions("Gateway", True), admissions("Gateway", False)
    decisions = DecisionLog(allow_rate=0.0, deny_rate=0.0)
    for _ in range(3):
        decisions.record(request("Gateway"), ALLOWED, 0.001)
    decisions.record(request("Gateway"), DENIED, 0.001)
    assert admissions("Gateway", True) == before[0] + 3
    assert admissions("Gateway", False) == before[1] + 1


def test_default_rates_log_denials_not_allows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    decisions = DecisionLog()
    decisions.record(request(), ALLOWED, 0.001)
    decisions.record(request(), DENIED, 0.002)
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelno, r.__dict__["allowed"]) for r in lines] == [(logging.INFO, False)]
    assert lines[0].__dict__["duration_us"] == 2000 and lines[0].__dict__["uid"] == "u-1"


def test_allow_rate_samples_allowed_reviews(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    decisions = DecisionLog(allow_rate=0.5)
    for _ in range(400):
        decisions.record(request(), ALLOWED, 0.001)
    logged = sum(1 for r in caplog.records if r.name == LOGGER)
    assert 120 < logged < 280, "about half"


def test_debug_level_logs_every_review(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    decisions = DecisionLog(allow_rate=0.0, deny_rate=0.0)
    decisions.record(request(), ALLOWED, 0.001)
    decisions.record(request(), DENIED, 0.001)
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.DEBUG] * 2
