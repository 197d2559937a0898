"""Istio wiring: every Istio / meshguard object the chart renders or prints passes meshguard's own
validators, and the addresses it gives Istio are the chart's real Services."""

from __future__ import annotations

import importlib.util
import textwrap
from typing import Any

import pytest
import yaml

from meshguard.common.findings import Finding
from meshguard.common.resources import from_dict, parse_text
from meshguard.registry import default_registry
from tests.chart.helm import CHART, NAMESPACE, Helm, find, one
from tests.chart.toggles import TOGGLES

Rendered = dict[str, list[dict[str, Any]]]
MESH_GROUPS = ("istio.io", "meshguard.io")


def _errors(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if f.is_error]


def _is_mesh(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("apiVersion", "")).split("/")[0].endswith(
        MESH_GROUPS
    )


def _mesh_objects(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Istio / meshguard objects: rendered directly, or inside the chart's ConfigMaps."""
    found = [m for m in manifests if _is_mesh(m)]
    for configmap in find(manifests, "ConfigMap"):
        for key, text in (configmap.get("data") or {}).items():
            if key.endswith(".yaml"):
                found += [d for d in yaml.safe_load_all(text) if _is_mesh(d)]
    return found


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_rendered_mesh_objects_pass_meshguards_validators(rendered: Rendered, toggle: str) -> None:
    registry = default_registry()
    for doc in _mesh_objects(rendered[toggle]):
        assert _errors(registry.validate(from_dict(doc))) == [], doc["metadata"]


def test_policies_from_values_are_validated(rendered: Rendered) -> None:
    kinds = sorted(d["kind"] for d in _mesh_objects(rendered["configs"]))
    assert kinds == ["AuthorizationPolicy", "RequestAuthentication"]


def _notes_blocks(notes: str) -> list[dict[str, Any]]:
    """The YAML examples in NOTES.txt: the paragraphs that parse as a mapping."""
    blocks = []
    for paragraph in notes.split("\n\n"):
        try:
            parsed = yaml.safe_load(textwrap.dedent(paragraph))
        except yaml.YAMLError:
            continue
        if isinstance(parsed, dict):
            blocks.append(parsed)
    return blocks


@pytest.mark.parametrize(("flavour", "port"), [("grpc", 9000), ("http", 8000)])
def test_notes_show_the_real_provider_address_and_a_valid_custom_policy(
    helm: Helm, flavour: str, port: int
) -> None:
    notes = helm.notes({"istio": {"providerFlavor": flavour}})
    blocks = _notes_blocks(notes)
    mesh = next(b for b in blocks if "meshConfig" in b)
    provider = mesh["meshConfig"]["extensionProviders"][0]
    assert provider["name"] == "meshguard-ext-authz"
    entry = provider[f"envoyExtAuthz{flavour.capitalize()}"]
    assert entry == {
        **entry,
        "service": f"mg-meshguard-authz.{NAMESPACE}.svc.cluster.local",
        "port": port,
    }
    policy = next(b for b in blocks if b.get("kind") == "AuthorizationPolicy")
    assert policy["spec"]["action"] == "CUSTOM"
    assert policy["spec"]["provider"]["name"] == provider["name"]
    assert _errors(default_registry().validate(from_dict(policy))) == []


def test_provider_address_points_at_the_authz_service(rendered: Rendered) -> None:
    manifests = rendered["istio-operator"]
    operator = one(manifests, "IstioOperator")
    assert operator["metadata"]["namespace"] == "istio-system"
    provider = operator["spec"]["meshConfig"]["extensionProviders"][0]["envoyExtAuthzGrpc"]
    service = one(manifests, "Service", "-authz")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc-authz")
    assert provider == {
        "service": f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local",
        "port": grpc["port"],
    }
    configmap = one(rendered["istio-configmap-http"], "ConfigMap", "-istio-provider")
    values = yaml.safe_load(configmap["data"]["istiod-values.yaml"])
    http = values["meshConfig"]["extensionProviders"][0]["envoyExtAuthzHttp"]
    assert http["port"] == 8000
    assert http["includeRequestHeadersInCheck"] == ["authorization", "cookie"]


def test_rate_limit_envoy_filter_calls_the_ratelimit_service(rendered: Rendered) -> None:
    manifests = rendered["istio-operator"]
    envoy_filter = one(manifests, "EnvoyFilter")
    assert envoy_filter["spec"]["workloadSelector"]["labels"] == {"istio": "ingressgateway"}
    patch = envoy_filter["spec"]["configPatches"][0]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    config = patch["patch"]["value"]["typed_config"]
    assert config["@type"].endswith("envoy.extensions.filters.http.ratelimit.v3.RateLimit")
    assert config["domain"] == "meshguard"
    assert config["failure_mode_deny"] is False
    service = one(manifests, "Service", "-ratelimit")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc-ratelimit")
    cluster = config["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    host = f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert cluster == f"outbound|{grpc['port']}||{host}"
    assert not find(rendered["defaults"], "EnvoyFilter")


def test_the_helm_test_virtual_service_is_one_meshguard_denies() -> None:
    """`helm test` expects the webhook to deny this object; meshguard's validators must agree."""
    spec = importlib.util.spec_from_file_location("helm_test", CHART / "files" / "helm-test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = yaml.safe_dump(
        {**module.BAD_VIRTUAL_SERVICE, "metadata": {"name": "x", "namespace": "default"}}
    )
    resource = parse_text(text, "helm-test.py")[0]
    assert _errors(default_registry().validate(resource))
