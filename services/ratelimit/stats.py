"""The reference's stats, kept as plain integers on the request path.

Names follow envoyproxy/ratelimit's statsd names (``ratelimit.service.rate_limit.<key>.<stat>``);
:mod:`metrics` exposes the same counters to Prometheus at scrape time, so counting a hit costs
one integer addition and no label lookup.
"""

from __future__ import annotations

import collections

LIMIT_STATS = (
    "total_hits",
    "over_limit",
    "near_limit",
    "within_limit",
    "shadow_mode",
    "over_limit_with_local_cache",
)
SERVICE_STATS = (
    "config_load_success",
    "config_load_error",
    "global_shadow_mode",
    "call.should_rate_limit.redis_error",
    "call.should_rate_limit.service_error",
)


class LimitStats:
    """Counters of one stat key (one config path, or one request path for detailed metrics)."""

    __slots__ = ("domain", "key", *LIMIT_STATS)

    def __init__(self, domain: str, key: str) -> None:
        self.domain = domain
        self.key = key
        self.total_hits = 0
        self.over_limit = 0
        self.near_limit = 0
        self.within_limit = 0
        self.shadow_mode = 0
        self.over_limit_with_local_cache = 0


class Stats:
    """Every counter the service keeps; one instance per service."""

    def __init__(self) -> None:
        self.limits: dict[str, LimitStats] = {}
        self.domain_not_found: collections.Counter[str] = collections.Counter()
        self.service: collections.Counter[str] = collections.Counter()
        self.local_cache: collections.Counter[str] = collections.Counter()
        self.total_requests = 0

    def for_key(self, stat_key: str, domain: str) -> LimitStats:
        stats = self.limits.get(stat_key)
        if stats is None:
            path = stat_key[len(domain) + 1 :] if stat_key.startswith(domain + ".") else stat_key
            stats = self.limits[stat_key] = LimitStats(domain, path)
        return stats

    def snapshot(self) -> dict[str, int]:
        """Every non-zero counter under the reference's statsd name."""
        out: dict[str, int] = {}
        for stat_key, stats in self.limits.items():
            for name in LIMIT_STATS:
                value = getattr(stats, name)
                if value:
                    out[f"ratelimit.service.rate_limit.{stat_key}.{name}"] = value
        for domain, count in self.domain_not_found.items():
            out[f"ratelimit.service.rate_limit.{domain}.domain_not_found"] = count
        for name, count in self.service.items():
            if count:
                out[f"ratelimit.service.{name}"] = count
        for name, count in self.local_cache.items():
            out[f"ratelimit.localcache.{name}"] = count
        if self.total_requests:
            out["ratelimit_server.ShouldRateLimit.total_requests"] = self.total_requests
        return out
