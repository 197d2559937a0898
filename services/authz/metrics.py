"""Prometheus series of the authz service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "meshguard_authz_decisions_total",
    "Check decisions by outcome and reason (deny_policy, no_allow_match, jwt_invalid, ...).",
    ["decision", "reason"],
)
LATENCY = Histogram(
    "meshguard_authz_check_duration_seconds",
    "Time to answer one check, by flavour.",
    ["flavour"],
    buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25),
)
DRY_RUN = Counter(
    "meshguard_authz_dry_run_total",
    "Dry-run (istio.io/dry-run) verdicts that would have been enforced, by action and result.",
    ["action", "result"],
)
UNKNOWN_LABELS = Counter(
    "meshguard_authz_unknown_workload_labels_total",
    "Checks whose workload labels were unknown, so selector-scoped policies were skipped.",
)
