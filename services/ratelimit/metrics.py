"""Prometheus view of the reference's stats, one series per statsd counter.

``ratelimit.service.rate_limit.<domain>.<path>.<stat>`` becomes
``ratelimit_service_rate_limit_<stat>{domain, key1, key2}``: ``key1`` is the first path segment
and ``key2`` the rest (the reference's default mapping stops at two levels; joining the rest
keeps deeper paths one-to-one). Counters are read from :class:`Stats` at scrape time, so the
request path never touches a Prometheus label.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from meshguard.ratelimit.stats import LIMIT_STATS, Stats

RESPONSE_TIME = Histogram(
    "ratelimit_service_response_time_seconds",
    "ShouldRateLimit handling time (ratelimit_server.ShouldRateLimit.response_time).",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
)
REDIS_LATENCY = Histogram(
    "meshguard_ratelimit_redis_latency_seconds",
    "Round trip of one Redis pipeline.",
    buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05),
)


class StatsCollector(Collector):
    """Exposes one service's :class:`Stats`."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        families = {
            name: CounterMetricFamily(
                f"ratelimit_service_rate_limit_{name}",
                f"ratelimit.service.rate_limit.<key>.{name}",
                labels=("domain", "key1", "key2"),
            )
            for name in LIMIT_STATS
        }
        for limit in list(stats.limits.values()):
            key1, _, key2 = limit.key.partition(".")
            for name in LIMIT_STATS:
                value = getattr(limit, name)
                if value:
                    families[name].add_metric((limit.domain, key1, key2), value)
        yield from families.values()
        not_found = CounterMetricFamily(
            "ratelimit_service_rate_limit_domain_not_found",
            "Descriptors for a domain no config defines.",
            labels=("domain",),
        )
        for domain, count in list(stats.domain_not_found.items()):
            not_found.add_metric((domain,), count)
        yield not_found
        errors = CounterMetricFamily(
            "ratelimit_service_should_rate_limit_error",
            "Failed ShouldRateLimit calls by cause.",
            labels=("err_type",),
        )
        for err_type in ("redis_error", "service_error"):
            errors.add_metric((err_type,), stats.service[f"call.should_rate_limit.{err_type}"])
        yield errors
        for name in ("config_load_success", "config_load_error", "global_shadow_mode"):
            yield CounterMetricFamily(
                f"ratelimit_service_{name}", f"ratelimit.service.{name}", stats.service[name]
            )
        for name, count in list(stats.local_cache.items()):
            snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
            if name == "entryCount":
                yield GaugeMetricFamily(
                    "ratelimit_localcache_entry_count", "ratelimit.localcache.entryCount", count
                )
            else:
                yield CounterMetricFamily(
                    f"ratelimit_localcache_{snake}", f"ratelimit.localcache.{name}", count
                )
        requests = CounterMetricFamily(
            "ratelimit_service_total_requests",
            "ratelimit_server.ShouldRateLimit.total_requests",
            labels=("grpc_method",),
        )
        requests.add_metric(("ShouldRateLimit",), stats.total_requests)
        yield requests
