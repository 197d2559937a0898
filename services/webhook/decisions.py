"""What the webhook records of each verdict: metrics always, a log line sampled.

A log line per review cost about as much as a tenth of a small review's validation, and at
thousands of reviews a second the lines are noise; like authz's decision log, allowed and
denied reviews are logged at info at their own rates (``--log-allow-sample`` /
``--log-deny-sample``, by default none of the allows and every denial), and every review at
debug when the log level is debug.
"""

from __future__ import annotations

import logging
import random

from prometheus_client import Counter

from meshguard.webhook import metrics
from meshguard.webhook.admission import AdmissionRequest, Verdict

log = logging.getLogger("meshguard.webhook.server")


class DecisionLog:
    def __init__(self, *, allow_rate: float = 0.0, deny_rate: float = 1.0) -> None:
        self.allow_rate = allow_rate
        self.deny_rate = deny_rate
        # Looking a labelled child up costs more than incrementing it; label sets are few.
        self._counters: dict[tuple[str, str, bool], Counter] = {}

    def record(self, review: AdmissionRequest, verdict: Verdict, seconds: float) -> None:
        key = (review.kind, review.operation, verdict.allowed)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.ADMISSIONS.labels(
                review.kind, review.operation, str(verdict.allowed).lower()
            )
        counter.inc()
        metrics.ADMISSION_LATENCY.observe(seconds)
        rate = self.allow_rate if verdict.allowed else self.deny_rate
        if rate >= 1.0 or (rate > 0.0 and random.random() < rate):
            level = logging.INFO
        elif log.isEnabledFor(logging.DEBUG):
            level = logging.DEBUG
        else:
            return
        log.log(
            level,
            "admission",
            extra={
                "uid": review.uid,
                "kind": review.kind,
                "namespace": review.namespace,
                "operation": review.operation,
                "allowed": verdict.allowed,
                "dry_run": review.dry_run,
                "warnings": len(verdict.warnings),
                "duration_us": round(seconds * 1e6),
            },
        )
