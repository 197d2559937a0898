from __future__ import annotations

from typing import Any

import pytest

from tests.webhook.support import check, errors, warnings

HOST = "reviews.shop.svc.cluster.local"


def policy(**fields: Any) -> dict[str, Any]:
    return {"host": HOST, "trafficPolicy": fields}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (policy(connectionPool={}), "spec.trafficPolicy.connectionPool"),
        (
            policy(connectionPool={"tcp": {"connectTimeout": "0s"}}),
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        ),
        (
            policy(connectionPool={"http": {"idleTimeout": "abc"}}),
            "spec.trafficPolicy.connectionPool.http.idleTimeout",
        ),
        (
            policy(outlierDetection={"interval": "0.5ms"}),
            "spec.trafficPolicy.outlierDetection.interval",
        ),
        (
            policy(loadBalancer={"consistentHash": {"httpCookie": {"ttl": "0s"}}}),
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
        ),
        (
            policy(
                loadBalancer={
                    "consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 5000011}}
                }
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        ),
        (
            policy(
                loadBalancer={
                    "consistentHash": {
                        "useSourceIp": True,
                        "minimumRingSize": 10,
                        "ringHash": {"minimumRingSize": 10},
                    }
                }
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.ringHash",
        ),
        (
            policy(
                loadBalancer={"localityLbSetting": {"failover": [{"from": "us", "to": "us"}]}},
                outlierDetection={"interval": "1s"},
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to",
        ),
        (
            policy(
                loadBalancer={
                    "localityLbSetting": {"distribute": [{"from": "us/*/a", "to": {"eu": 100}}]}
                }
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from",
        ),
        (
            policy(loadBalancer={"warmup": {"aggression": 0}}),
            "spec.trafficPolicy.loadBalancer.warmup.duration",
        ),
        (
            policy(tls={"mode": "SIMPLE", "insecureSkipVerify": True, "caCertificates": "/ca"}),
            "spec.trafficPolicy.tls.caCertificates",
        ),
        (
            policy(tunnel={"targetHost": "bad_host", "targetPort": 80}),
            "spec.trafficPolicy.tunnel.targetHost",
        ),
        (
            policy(
                tunnel={"targetHost": "a.com", "targetPort": 80}, proxyProtocol={"version": "V1"}
            ),
            "spec.trafficPolicy.proxyProtocol",
        ),
        (
            policy(portLevelSettings=[{"port": {"number": 80}}]),
            "spec.trafficPolicy.portLevelSettings[0]",
        ),
        (
            {"host": HOST, "subsets": [{"name": "v1", "trafficPolicy": {}}]},
            "spec.subsets[0].trafficPolicy",
        ),
        ({"host": HOST, "subsets": [{"labels": {"a": "b"}}]}, "spec.subsets[0].name"),
        ({"host": "*bad*.com"}, "spec.host"),
        (policy(loadBalancer={"simple": "FASTEST"}), "spec.trafficPolicy.loadBalancer.simple"),
    ],
)
def test_errors(spec: dict[str, Any], path: str) -> None:
    assert path in errors(check("DestinationRule", spec))


def test_subset_policy_warnings_are_dropped() -> None:
    spec = {
        "host": HOST,
        "subsets": [{"name": "a", "trafficPolicy": {"outlierDetection": {"consecutiveErrors": 5}}}],
    }
    assert check("DestinationRule", spec) == []
    top = check("DestinationRule", policy(outlierDetection={"consecutiveErrors": 5}))
    assert set(warnings(top)) == {"spec.trafficPolicy.outlierDetection.consecutiveErrors"}


def test_accepts_valid_locality_and_idle_timeout_zero() -> None:
    spec = policy(
        loadBalancer={
            "localityLbSetting": {
                "distribute": [
                    {"from": "us-east/*", "to": {"us-east/zone1/*": 70, "us-west/*": 30}}
                ]
            }
        },
        connectionPool={"tcp": {"idleTimeout": "0s"}},
    )
    assert check("DestinationRule", spec) == []
