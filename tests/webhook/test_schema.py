from __future__ import annotations

import pytest

from meshguard.webhook import schema
from tests.harness.paths import REFERENCE
from tests.webhook.support import make


def test_shipped_crds_match_the_reference() -> None:
    reference = REFERENCE / "istio" / schema.CRD_FILE
    if not reference.exists():
        pytest.skip("reference CRDs not available")
    shipped = schema.package_files.files("meshguard.webhook").joinpath("crds", schema.CRD_FILE)
    assert shipped.read_text() == reference.read_text()


def test_every_istio_version_is_served() -> None:
    crds = schema.istio_crds()
    assert crds.versions("networking.istio.io", "VirtualService") == ["v1", "v1alpha3", "v1beta1"]
    assert crds.versions("security.istio.io", "PeerAuthentication") == ["v1", "v1beta1"]


def test_unknown_field_is_a_warning_with_its_path_and_a_suggestion() -> None:
    vs = make("VirtualService", {"hosts": ["r"], "http": [{"retry": {"attempts": 3}}]})
    found = schema.structural_findings(vs)
    assert [(f.path, f.is_error) for f in found] == [("spec.http[0].retry", False)]
    assert "retries" in found[0].message
    assert schema.cel_findings(vs) == []


def test_structural_errors() -> None:
    dr = make(
        "DestinationRule",
        {
            "host": 5,
            "trafficPolicy": {
                "loadBalancer": {"simple": "NOPE"},
                "connectionPool": {"tcp": {"maxConnections": "many"}},
            },
        },
    )
    paths = {f.path: f.message for f in schema.structural_findings(dr)}
    assert paths["spec.host"] == "expected string, got integer"
    assert "unsupported value 'NOPE'" in paths["spec.trafficPolicy.loadBalancer.simple"]
    assert "spec.trafficPolicy.connectionPool.tcp.maxConnections" in paths


def test_required_and_oneof() -> None:
    dr = make(
        "DestinationRule",
        {
            "trafficPolicy": {
                "loadBalancer": {"simple": "RANDOM", "consistentHash": {"useSourceIp": True}}
            }
        },
    )
    found = {f.path: f.message for f in schema.structural_findings(dr)}
    assert found["spec.host"] == "host is required"
    assert found["spec.trafficPolicy.loadBalancer"].startswith("only one of")


def test_cel_rules_report_the_crd_message() -> None:
    se = make(
        "ServiceEntry",
        {
            "hosts": ["*"],
            "ports": [{"number": 80, "name": "h"}],
            "resolution": "NONE",
            "endpoints": [{"address": "1.2.3.4"}],
        },
    )
    found = {f.path for f in schema.cel_findings(se) if f.is_error}
    assert {"spec", "spec.hosts[0]"} <= found


def test_unknown_kind_has_no_schema() -> None:
    assert not schema.knows(
        make("VirtualService", {}, version="v9").__class__(
            "example.com/v1", "Thing", make("VirtualService", {}).metadata, {}, {}
        )
    )
