"""Prometheus metrics of the admission endpoints (served on the admin port's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ADMISSIONS = Counter(
    "meshguard_webhook_admissions_total",
    "Admission reviews answered, by object kind, operation and verdict",
    ["kind", "operation", "allowed"],
)
ADMISSION_LATENCY = Histogram(
    "meshguard_webhook_admission_duration_seconds",
    "Time to answer an admission review, from body read to response",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BAD_REVIEWS = Counter(
    "meshguard_webhook_bad_reviews_total",
    "Requests refused before admission (malformed, oversized, wrong content type), by HTTP status",
    ["status"],
)
