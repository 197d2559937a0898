"""Renewal at half the lifetime with bounded jitter; backoff that grows and is capped."""

from __future__ import annotations

import datetime

import pytest

from meshguard.webhook.agent.schedule import backoff, renewal_time

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = START + datetime.timedelta(hours=24)


@pytest.mark.parametrize(("rand", "hours"), [(0.5, 12.0), (0.0, 10.8), (0.9999999, 13.2)])
def test_renewal_is_half_the_lifetime_plus_jitter(rand: float, hours: float) -> None:
    at = renewal_time(START, END, ratio=0.5, jitter=0.05, rand=lambda: rand)
    assert abs((at - START).total_seconds() - hours * 3600) < 1


def test_backoff_grows_then_caps() -> None:
    top = [backoff(n, base=0.5, cap=8, rand=lambda: 0.9999999) for n in range(1, 8)]
    assert top[:5] == pytest.approx([0.5, 1, 2, 4, 8])
    assert top[5:] == pytest.approx([8, 8])
    assert backoff(3, base=0.5, cap=8, rand=lambda: 0.0) == pytest.approx(1.0)
