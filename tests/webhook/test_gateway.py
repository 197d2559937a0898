from __future__ import annotations

from typing import Any

import pytest

from tests.webhook.support import check, errors, warnings


def server(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
        "hosts": ["a.example.com"],
    }
    base.update(fields)
    return {"selector": {"istio": "ingressgateway"}, "servers": [base]}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (
            server(tls={"mode": "SIMPLE", "credentialName": "c", "caCrl": "/crl"}),
            "spec.servers[0].tls.caCrl",
        ),
        (
            server(
                tls={
                    "mode": "MUTUAL",
                    "tlsCertificates": [{"serverCertificate": "/c"}],
                    "caCertificates": "/ca",
                }
            ),
            "spec.servers[0].tls.tlsCertificates[0].privateKey",
        ),
        (
            server(tls={"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]}),
            "spec.servers[0].tls",
        ),
        (
            server(bind="not-an-ip", tls={"mode": "SIMPLE", "credentialName": "c"}),
            "spec.servers[0].bind",
        ),
        (
            server(bind="unix:///var/run/gw.sock", tls={"mode": "SIMPLE", "credentialName": "c"}),
            "spec.servers[0].port.number",
        ),
        (
            server(
                port={"number": 443, "protocol": "HTTPS"},
                tls={"mode": "SIMPLE", "credentialName": "c"},
            ),
            "spec.servers[0].port.name",
        ),
        (server(hosts=[]), "spec.servers[0].hosts"),
        (server(hosts=["*.a.com/x.com"]), "spec.servers[0].hosts[0]"),
        (server(tls={"mode": "BOGUS"}), "spec.servers[0].tls.mode"),
    ],
)
def test_errors(spec: dict[str, Any], path: str) -> None:
    assert path in errors(check("Gateway", spec))


def test_unix_bind_with_port_zero_and_ip_hosts() -> None:
    spec = server(
        bind="unix:///var/run/gw.sock",
        hosts=["10.1.2.3", "*"],
        port={"number": 0, "name": "http", "protocol": "HTTP"},
    )
    assert check("Gateway", spec) == []


def test_tls_warnings() -> None:
    spec = server(
        tls={
            "mode": "SIMPLE",
            "credentialName": "c",
            "minProtocolVersion": "TLSV1_1",
            "cipherSuites": ["AES128-SHA", "AES128-SHA"],
        }
    )
    assert set(warnings(check("Gateway", spec))) == {"spec.servers[0].tls.cipherSuites[1]"}
    old = server(tls={"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_0"})
    assert set(warnings(check("Gateway", old))) == {"spec.servers[0].tls.minProtocolVersion"}
    many = server(
        tls={
            "mode": "SIMPLE",
            "tlsCertificates": [{"serverCertificate": "/c", "privateKey": "/k"}] * 3,
        }
    )
    assert set(warnings(check("Gateway", many))) == {"spec.servers[0].tls.tlsCertificates"}
