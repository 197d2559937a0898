"""The rendered Envoy bootstrap: chains per mTLS mode, authz context, and Envoy accepts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from meshguard.common.envoy import EnvoyError, envoy_binary
from meshguard.webhook.agent.sds import write_sds_resources
from meshguard.webhook.injection.bootstrap import Workload, render
from meshguard.webhook.injection.config import InjectionConfig

WORKLOAD = Workload("shop", "web", {"app": "web", "version": "v1"}, (8080, 9090))


def _listener(config: dict, name: str = "inbound") -> dict:  # type: ignore[type-arg]
    return next(lst for lst in config["static_resources"]["listeners"] if lst["name"] == name)


def _inbound(config: dict) -> dict:  # type: ignore[type-arg]
    return _listener(config)


def test_strict_has_only_mtls_chains_matched_by_original_port() -> None:
    inbound = _inbound(render(WORKLOAD, InjectionConfig(), mtls_mode="STRICT", intercepted=True))
    matches = [c["filter_chain_match"] for c in inbound["filter_chains"]]
    assert matches == [
        {"destination_port": 8080, "transport_protocol": "tls"},
        {"destination_port": 9090, "transport_protocol": "tls"},
    ]
    tls = inbound["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    filters = [f["name"] for f in inbound["listener_filters"]]
    assert filters == [
        "envoy.filters.listener.original_dst",
        "envoy.filters.listener.tls_inspector",
    ]


def test_permissive_adds_plain_chains_and_context_extensions() -> None:
    inbound = _inbound(
        render(WORKLOAD, InjectionConfig(), mtls_mode="PERMISSIVE", intercepted=False)
    )
    names = [c["name"] for c in inbound["filter_chains"]]
    assert names == ["inbound-mtls-8080", "inbound-plain-8080"]
    hcm = inbound["filter_chains"][1]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    extensions = route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["check_settings"]
    assert extensions["context_extensions"] == {"namespace": "shop", "labels": "app=web,version=v1"}
    # The caller's steering header stops at the sidecar (end to end: test_mesh_e2e.py).
    assert hcm["route_config"]["request_headers_to_remove"] == ["x-envoy-original-dst-host"]
    assert [f["name"] for f in hcm["http_filters"]] == [
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.ratelimit",
        "envoy.filters.http.router",
    ]


@pytest.mark.parametrize("intercepted", [True, False])
def test_outbound_originates_mtls_to_the_original_destination(intercepted: bool) -> None:
    config = InjectionConfig(trust_domain="example.org", sds_dir="/sds")
    rendered = render(WORKLOAD, config, mtls_mode="STRICT", intercepted=intercepted)
    outbound = _listener(rendered, "outbound")
    assert outbound["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15001}
    filters = [f["name"] for f in outbound.get("listener_filters", [])]
    assert filters == (["envoy.filters.listener.original_dst"] if intercepted else [])
    hcm = outbound["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    cluster = next(
        c
        for c in rendered["static_resources"]["clusters"]
        if c["name"] == route["route"]["cluster"]
    )
    assert cluster["type"] == "ORIGINAL_DST" and cluster["lb_policy"] == "CLUSTER_PROVIDED"
    tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificate_sds_secret_configs"][0]["name"] == "default"
    validation = tls["combined_validation_context"]
    assert validation["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"prefix": "spiffe://example.org/"}}
    ]
    assert validation["validation_context_sds_secret_config"]["name"] == "ROOTCA"


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
def test_envoy_validates_the_bootstrap(mode: str, tmp_path: Path) -> None:
    try:
        binary = envoy_binary()
    except EnvoyError as exc:
        pytest.skip(str(exc))
    config = InjectionConfig(sds_dir=str(tmp_path))
    write_sds_resources(tmp_path)  # the agent writes these before it starts Envoy
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(render(WORKLOAD, config, mtls_mode=mode, intercepted=True)))
    result = subprocess.run(
        [str(binary), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
