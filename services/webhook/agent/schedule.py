"""When to renew and how long to wait after a failure.

Renewal happens at half the lifetime, shifted by a random jitter so that pods started together
(a rollout) do not all hit the CA at the same instant; failures back off exponentially but never
past the point where the current certificate would expire.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

Rand = Callable[[], float]  # uniform in [0, 1)


def renewal_time(
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    *,
    ratio: float = 0.5,
    jitter: float = 0.05,
    rand: Rand = random.random,
) -> datetime.datetime:
    """``not_before + lifetime * (ratio ± jitter)``."""
    lifetime = not_after - not_before
    fraction = ratio + jitter * (2 * rand() - 1)
    return not_before + lifetime * min(max(fraction, 0.0), 1.0)


def backoff(
    attempt: int, *, base: float = 0.5, cap: float = 30.0, rand: Rand = random.random
) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): full jitter over ``base * 2**n``."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return float(ceiling * (0.5 + rand() / 2))
