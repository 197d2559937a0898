"""One structured log line per decision (sampled), naming the deciding policy and rule.

Never logs tokens, header values or claims: only the request line, peers and the verdict.
"""

from __future__ import annotations

import logging
import random

from prometheus_client import Counter

from meshguard.authz.attributes import RequestAttributes
from meshguard.authz.authorizer import Outcome
from meshguard.authz.metrics import DECISIONS, DRY_RUN, UNKNOWN_LABELS

log = logging.getLogger("meshguard.authz.decision")


class DecisionLog:
    """Counts every decision; logs allowed ones at ``allow_rate`` and denied at ``deny_rate``."""

    def __init__(self, *, allow_rate: float = 0.0, deny_rate: float = 1.0) -> None:
        self.allow_rate = allow_rate
        self.deny_rate = deny_rate
        # Looking a labelled child up costs more than incrementing it; reasons are few.
        self._counters: dict[tuple[bool, str], Counter] = {}

    def _counter(self, allowed: bool, reason: str) -> Counter:
        child = self._counters[allowed, reason] = DECISIONS.labels(
            "allow" if allowed else "deny", reason
        )
        return child

    def record(self, attrs: RequestAttributes, outcome: Outcome, seconds: float) -> None:
        key = (outcome.allowed, outcome.reason)
        (self._counters.get(key) or self._counter(*key)).inc()
        if attrs.labels is None:
            UNKNOWN_LABELS.inc()
        decision = outcome.decision
        if decision is not None:
            if decision.shadow_deny is not None:
                DRY_RUN.labels("DENY", "allow" if decision.shadow_deny.allowed else "deny").inc()
            if decision.shadow_allow is not None:
                DRY_RUN.labels("ALLOW", "allow" if decision.shadow_allow.allowed else "deny").inc()
        rate = self.allow_rate if outcome.allowed else self.deny_rate
        if rate <= 0.0 or (rate < 1.0 and random.random() >= rate):
            return
        http = attrs.http
        log.info(
            "authz decision",
            extra={
                **outcome.metadata(),
                "status": outcome.status,
                "namespace": attrs.namespace,
                "labels": dict(attrs.labels) if attrs.labels is not None else None,
                "source_principal": attrs.source_principal,
                "source_ip": str(attrs.source_ip) if attrs.source_ip else None,
                "method": http.method if http else None,
                "host": http.host if http else None,
                "path": http.url_path if http else None,
                "protocol": "http" if http else "tcp",
                "duration_us": round(seconds * 1e6),
            },
        )
