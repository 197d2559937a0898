"""The sliding-window and GCRA steps decide as documented, and their outcomes map onto
``limit_remaining`` / ``duration_until_reset`` as docs/ratelimit.md says."""

from __future__ import annotations

from meshguard.ratelimit import algorithms
from meshguard.ratelimit.algorithms import (
    Algorithm,
    SlidingState,
    gcra_step,
    never_allowed,
    outcome,
    sliding_step,
)

W = 60_000_000  # a one-minute window, in µs
T0 = 1_700_000_040_000_000  # a minute boundary


def run_sliding(
    state: SlidingState | None, now: int, addend: int = 1, limit: int = 10
) -> tuple[algorithms.Outcome, SlidingState | None]:
    allowed, current, previous, after = sliding_step(state, now, addend, W, limit)
    result = outcome(
        Algorithm.SLIDING_WINDOW, (int(allowed), current, previous), now, addend, W, limit
    )
    return result, after if allowed else state


def test_sliding_window_denies_without_counting_and_weighs_the_previous_window() -> None:
    state: SlidingState | None = None
    for used in range(10):
        result, state = run_sliding(state, T0 + 1_000_000)
        assert result.allowed and result.used_before == used and result.remaining == 9 - used
    denied, after = run_sliding(state, T0 + 1_000_000)
    assert not denied.allowed and after == state  # a denied hit is not stored
    # Half-way into the next window half of the previous 10 still weigh: 5 more fit.
    for _ in range(5):
        result, state = run_sliding(state, T0 + W + W // 2)
        assert result.allowed
    assert not run_sliding(state, T0 + W + W // 2)[0].allowed
    # Two windows later nothing of the first window is left.
    assert run_sliding(state, T0 + 3 * W)[0].remaining == 9


def test_sliding_window_reset_is_full_drain_when_allowed_and_retry_after_when_denied() -> None:
    allowed, state = run_sliding(None, T0 + 15_000_000, addend=10)
    assert allowed.allowed and allowed.remaining == 0
    assert allowed.reset_seconds == 105  # rest of this window plus the next one
    denied, _ = run_sliding(state, T0 + 15_000_000)
    # The 10 must weigh 9 or less: 6 s into the next window (45 s away), so 51 s.
    assert not denied.allowed and denied.reset_seconds == 45 + 6


def test_gcra_spaces_hits_after_the_burst() -> None:
    limit = 6  # one hit every 10 s, burst of 6
    tat = None
    for left in range(5, -1, -1):
        allowed, base, new = gcra_step(tat, T0, 1, W, limit)
        result = outcome(Algorithm.GCRA, (int(allowed), base, new), T0, 1, W, limit)
        assert allowed and result.remaining == left
        tat = new
    allowed, base, new = gcra_step(tat, T0, 1, W, limit)
    result = outcome(Algorithm.GCRA, (int(allowed), base, new), T0, 1, W, limit)
    assert not allowed and result.reset_seconds == 10  # retry after one emission interval
    allowed, base, new = gcra_step(tat, T0 + 10_000_000, 1, W, limit)
    result = outcome(Algorithm.GCRA, (int(allowed), base, new), T0 + 10_000_000, 1, W, limit)
    assert allowed and result.remaining == 0 and result.reset_seconds == 60


def test_gcra_probe_and_zero_limit() -> None:
    allowed, base, new = gcra_step(None, T0, 0, W, 5)
    assert allowed and base == new == T0
    assert never_allowed(1, 60) == algorithms.Outcome(False, 0, 0, 60)
    assert never_allowed(0, 60).allowed
