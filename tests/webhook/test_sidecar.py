from __future__ import annotations

from typing import Any

import pytest

from tests.webhook.support import check, errors, warnings

EGRESS = [{"hosts": ["./*"]}]


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"ingress": [{"defaultEndpoint": "127.0.0.1:80"}]}, "spec.ingress[0].port"),
        (
            {"ingress": [{"port": {"number": 80, "protocol": "HTTP", "targetPort": 8080}}]},
            "spec.ingress[0].port.targetPort",
        ),
        (
            {
                "ingress": [
                    {"port": {"number": 80, "protocol": "HTTP"}, "defaultEndpoint": "127.0.0.1:0"}
                ]
            },
            "spec.ingress[0].defaultEndpoint",
        ),
        (
            {
                "ingress": [
                    {
                        "port": {"number": 443, "protocol": "HTTP"},
                        "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"},
                    }
                ]
            },
            "spec.ingress[0].tls",
        ),
        (
            {
                "ingress": [
                    {
                        "port": {"number": 443, "protocol": "HTTPS"},
                        "tls": {"mode": "SIMPLE", "credentialName": "c"},
                    }
                ]
            },
            "spec.ingress[0].tls.credentialName",
        ),
        (
            {
                "egress": [
                    {
                        "port": {"number": 0, "protocol": "HTTP"},
                        "bind": "unix:///a.sock",
                        "captureMode": "IPTABLES",
                        "hosts": ["./*"],
                    }
                ]
            },
            "spec.egress[0].captureMode",
        ),
        (
            {
                "egress": [
                    {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["./*"]},
                    {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["ns/*"]},
                ]
            },
            "spec.egress[1].port.number",
        ),
        ({"egress": [{"port": {"number": 80}, "hosts": []}]}, "spec.egress[0].hosts"),
        (
            {"outboundTrafficPolicy": {"mode": "ALLOW_ANY_DYNAMIC_DNS"}},
            "spec.outboundTrafficPolicy.mode",
        ),
        (
            {
                "outboundTrafficPolicy": {
                    "mode": "ALLOW_ANY",
                    "egressProxy": {"host": "p.example.com"},
                }
            },
            "spec.outboundTrafficPolicy.egressProxy.port",
        ),
        ({"inboundConnectionPool": {}}, "spec.inboundConnectionPool"),
        (
            {"workloadSelector": {"labels": {"app": "*"}}, "egress": EGRESS},
            "spec.workloadSelector.labels[app]",
        ),
    ],
)
def test_errors(spec: dict[str, Any], path: str) -> None:
    assert path in errors(check("Sidecar", spec))


def test_star_star_with_other_hosts_warns() -> None:
    found = check("Sidecar", {"egress": [{"hosts": ["*/*", "./*"]}]})
    assert set(warnings(found)) == {"spec.egress[0].hosts"} and not errors(found)


def test_http_pool_on_tcp_port_warns() -> None:
    spec = {
        "ingress": [
            {
                "port": {"number": 3306, "protocol": "TCP"},
                "connectionPool": {"http": {"maxRetries": 1}},
            }
        ]
    }
    assert set(warnings(check("Sidecar", spec))) == {"spec.ingress[0].connectionPool.http"}


def test_unix_egress_and_allow_any_proxy_accepted() -> None:
    spec = {
        "egress": [
            {"port": {"number": 0, "protocol": "HTTP"}, "bind": "unix:///a.sock", "hosts": ["~/*"]}
        ],
        "outboundTrafficPolicy": {
            "mode": "ALLOW_ANY",
            "egressProxy": {"host": "p.example.com", "port": {"number": 3128}},
        },
    }
    assert check("Sidecar", spec) == []
