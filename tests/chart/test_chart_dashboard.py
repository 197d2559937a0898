"""The Grafana dashboard: golden signals per service, and only metrics the services export."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import Metric

import meshguard.authz.metrics
import meshguard.common.configstore
import meshguard.webhook.ca.service
import meshguard.webhook.metrics
from meshguard.ratelimit.metrics import StatsCollector
from meshguard.ratelimit.stats import Stats
from tests.chart.helm import CHART, find, one

Rendered = dict[str, list[dict[str, Any]]]
DASHBOARD = CHART / "files" / "dashboard.json"
_SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(families: list[Metric]) -> set[str]:
    return {f.name + suffix for f in families for suffix in _SERIES.get(f.type, ("",))}


def _exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {
        p["title"]: [t["expr"] for t in p.get("targets", [])]
        for p in dashboard["panels"]
        if p["type"] != "row"
    }


def test_dashboard_configmap_is_picked_up_by_grafana(rendered: Rendered) -> None:
    configmap = one(rendered["defaults"], "ConfigMap", "-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["meshguard.json"]) == json.loads(DASHBOARD.read_text())
    assert not find(rendered["nothing"], "ConfigMap", "-dashboard")


def test_four_golden_signals_per_service_and_the_decision_panels() -> None:
    exprs = _exprs(json.loads(DASHBOARD.read_text()))
    for service in ("authz", "ratelimit", "webhook"):
        latency = exprs[f"{service} latency (p50 / p99)"]
        assert all("histogram_quantile" in e for e in latency)
        for signal in ("traffic", "errors", "saturation"):
            assert exprs[f"{service} {signal}"], f"{service} {signal}"
    assert "by (decision, reason)" in exprs["authz decisions by reason"][0]
    assert "over_limit" in exprs["rate limit over-limit by descriptor"][0]
    assert "by (reason)" in exprs["mesh CA refusals by reason"][0]
    assert any("meshguard_ca_certificates_issued_total" in e for e in exprs["mesh CA certificates"])


def test_dashboard_queries_only_exported_metrics() -> None:
    # Importing the metrics modules registers their families; ratelimit's per-limit counters
    # come from a collector that builds them at scrape time.
    assert meshguard.authz.metrics and meshguard.webhook.metrics and meshguard.common.configstore
    assert meshguard.webhook.ca.service
    exported = _exported(list(REGISTRY.collect())) | _exported(
        list(StatsCollector(Stats()).collect())
    )
    queried = {
        name
        for exprs in _exprs(json.loads(DASHBOARD.read_text())).values()
        for expr in exprs
        for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr)
    }
    assert queried, "no metric found in the dashboard's queries"
    assert queried - exported == set()


def test_service_monitors_scrape_every_admin_port_the_dashboard_reads(rendered: Rendered) -> None:
    manifests = rendered["service-monitor"]
    assert not find(rendered["defaults"], "ServiceMonitor")
    scraped = {}
    for monitor in find(manifests, "ServiceMonitor"):
        labels = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in find(manifests, "Service")
            if labels.items() <= s["metadata"]["labels"].items()
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http-admin"]
        assert "http-admin" in {p["name"] for p in services[0]["spec"]["ports"]}
        scraped[labels["app.kubernetes.io/component"]] = services[0]["metadata"]["name"]
    assert sorted(scraped) == ["authz", "ca", "ratelimit", "webhook"]
    # The Prometheus Operator names the job after the Service; every panel's job matcher must
    # match one of them.
    jobs = {
        job
        for exprs in _exprs(json.loads(DASHBOARD.read_text())).values()
        for expr in exprs
        for job in re.findall(r'job=~"([^"]+)"', expr)
    }
    assert jobs
    for job in jobs:
        assert any(re.fullmatch(job, name) for name in scraped.values()), job
