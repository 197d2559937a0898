from __future__ import annotations

from typing import Any

import pytest

from tests.webhook.support import check, errors, warnings

HTTP = {"number": 80, "name": "http", "protocol": "HTTP"}
TCP = {"number": 5432, "name": "tcp-db", "protocol": "TCP"}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"hosts": ["a.com"], "addresses": ["not-ip"], "ports": [HTTP]}, "spec.addresses[0]"),
        (
            {
                "hosts": ["a.com"],
                "resolution": "STATIC",
                "ports": [HTTP, TCP],
                "endpoints": [{"address": "unix:///sock"}],
            },
            "spec.endpoints[0].address",
        ),
        (
            {
                "hosts": ["a.com"],
                "resolution": "STATIC",
                "ports": [HTTP],
                "endpoints": [{"address": "1.2.3.4", "labels": {"k": "bad value"}}],
            },
            "spec.endpoints[0].labels[k]",
        ),
        (
            {"hosts": ["*.a.com"], "resolution": "DYNAMIC_DNS", "ports": [TCP]},
            "spec.ports[0].protocol",
        ),
        (
            {
                "hosts": ["*.a.com"],
                "resolution": "DYNAMIC_DNS",
                "ports": [HTTP],
                "addresses": ["1.2.3.4"],
            },
            "spec.addresses",
        ),
        (
            {
                "hosts": ["a.com"],
                "resolution": "DNS",
                "ports": [HTTP],
                "endpoints": [{"address": "bad_host"}],
            },
            "spec.endpoints[0].address",
        ),
        (
            {
                "hosts": ["a.com"],
                "ports": [HTTP, {"number": 81, "name": "http", "protocol": "HTTP"}],
            },
            "spec.ports[1].name",
        ),
        ({"hosts": ["a.com"], "ports": [HTTP], "exportTo": ["~", "."]}, "spec.exportTo"),
        ({"hosts": ["a.com"], "ports": [HTTP], "resolution": "SOMETIMES"}, "spec.resolution"),
    ],
)
def test_errors(spec: dict[str, Any], path: str) -> None:
    assert path in errors(check("ServiceEntry", spec))


def test_tcp_without_addresses_warns_only_without_autoallocation() -> None:
    dns = {"hosts": ["db.example.com"], "resolution": "DNS", "ports": [TCP]}
    assert check("ServiceEntry", dns) == []
    off = {"networking.istio.io/enable-autoallocate-ip": "false"}
    assert set(warnings(check("ServiceEntry", dns, annotations=off))) == {"spec.ports[0]"}


def test_unix_endpoint_and_none_export() -> None:
    spec = {
        "hosts": ["a.com"],
        "resolution": "STATIC",
        "ports": [HTTP],
        "exportTo": ["~"],
        "endpoints": [{"address": "unix:///var/run/a.sock"}],
    }
    assert check("ServiceEntry", spec) == []


def test_selector_with_resolution_none_warns() -> None:
    spec = {
        "hosts": ["a.com"],
        "addresses": ["10.0.0.1"],
        "ports": [HTTP],
        "workloadSelector": {"labels": {"app": "a"}},
    }
    assert set(warnings(check("ServiceEntry", spec))) == {"spec.workloadSelector"}


def test_dynamic_dns_mesh_internal_only_without_waypoint() -> None:
    spec = {
        "hosts": ["*.a.com"],
        "resolution": "DYNAMIC_DNS",
        "ports": [HTTP],
        "location": "MESH_INTERNAL",
    }
    assert check("ServiceEntry", spec) == []
    waypoint = check("ServiceEntry", spec, labels={"istio.io/use-waypoint": "wp"})
    assert "spec.location" in errors(waypoint)
