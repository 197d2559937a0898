"""The chart runs the services with their real flags: rendered args parse with meshguard's CLI."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from typing import Any

import pytest

from meshguard.authz.settings import from_args as authz_settings
from meshguard.cli import build_parser
from meshguard.ratelimit.settings import from_args
from meshguard.webhook.ca.settings import from_args as ca_settings
from meshguard.webhook.injection.settings import from_args as injection_settings
from tests.chart import settings_schema
from tests.chart.helm import CHART, NAMESPACE, Helm, container, find, one
from tests.chart.toggles import TOGGLES

Rendered = dict[str, list[dict[str, Any]]]


def _parse(args: list[str]) -> argparse.Namespace:
    """argparse's namespace for ``meshguard <args>``; a usage error fails with its message."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"meshguard rejects the chart's args {args}: {err.getvalue()}")


def _meshguard_containers(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for d in find(manifests, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
        if "/meshguard/meshguard" in c["image"]
    ]


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_every_container_args_parse(rendered: Rendered, toggle: str) -> None:
    for c in _meshguard_containers(rendered[toggle]):
        args = _parse(c["args"])
        assert args.handler is not None


def test_every_service_runs_serve(rendered: Rendered) -> None:
    commands = sorted(c["args"][:2] for c in _meshguard_containers(rendered["defaults"]))
    assert commands == [
        ["authz", "serve"],
        ["ca", "serve"],
        ["ratelimit", "serve"],
        ["webhook", "serve"],
    ]


@pytest.mark.parametrize(
    ("toggle", "redis_type", "url"),
    [
        ("defaults", "single", "mg-meshguard-redis:6379"),
        ("redis-external", "single", "redis.example.com:6380"),
        ("redis-sentinel", "sentinel", "main,sentinel-0.redis:26379,sentinel-1.redis:26379"),
        ("redis-cluster", "cluster", "rc-0.rc:6379,rc-1.rc:6379"),
    ],
)
def test_ratelimit_reaches_redis_as_configured(
    rendered: Rendered, toggle: str, redis_type: str, url: str
) -> None:
    c = container(one(rendered[toggle], "Deployment", "-ratelimit"))
    settings = from_args(_parse(c["args"]), environ={})
    assert settings.backend == "redis"
    assert (settings.redis.type, settings.redis.url) == (redis_type, url)
    assert settings.config_paths == ("/etc/meshguard/ratelimit",)


def test_redis_secrets_and_tls_reach_the_service(rendered: Rendered) -> None:
    c = container(one(rendered["redis-external"], "Deployment", "-ratelimit"))
    env = {e["name"]: e for e in c["env"]}
    secret = {"secretKeyRef": {"name": "redis-auth", "key": "password"}}
    assert env["REDIS_AUTH"]["valueFrom"] == secret
    settings = from_args(_parse(c["args"]), environ={})
    assert settings.redis.tls is True
    assert settings.redis.tls_ca == "/etc/meshguard/redis-tls/ca.crt"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/etc/meshguard/redis-tls" in mounts
    sentinel = container(one(rendered["redis-sentinel"], "Deployment", "-ratelimit"))
    assert {e["name"] for e in sentinel["env"]} >= {"REDIS_SENTINEL_AUTH"}


def test_ratelimit_settings_become_flags(rendered: Rendered) -> None:
    c = container(one(rendered["configs"], "Deployment", "-ratelimit"))
    settings = from_args(_parse(c["args"]), environ={})
    assert settings.fail_open is True
    assert settings.service.shadow_mode is False
    assert settings.service.near_limit_ratio == 0.9
    assert settings.redis.timeout == pytest.approx(0.02)
    assert "--local-cache-size-in-bytes=1048576" in c["args"]


def test_ratelimit_settings_schema_offers_every_other_serve_flag() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    offered = schema["properties"]["ratelimit"]["properties"]["settings"]["properties"]
    assert offered == settings_schema.settings_properties(), (
        "ratelimit serve's flags changed: run `python -m tests.chart.settings_schema` and "
        "`python -m tests.chart.values_table`"
    )
    flags = set(settings_schema.serve_flags())
    assert flags >= settings_schema.CHART_OWNED, "a flag the chart sets no longer exists"


def test_authz_flags_carry_the_values(rendered: Rendered) -> None:
    c = container(one(rendered["defaults"], "Deployment", "-authz"))
    args = _parse(c["args"])
    assert (args.grpc_port, args.http_port, args.admin_port) == (9000, 8000, 9901)
    assert args.root_namespace == "istio-system"
    assert args.trust_domain == "cluster.local"
    assert args.policies == ["/etc/meshguard/policies"]
    assert args.event_loop == "auto"
    configured = _parse(container(one(rendered["configs"], "Deployment", "-authz"))["args"])
    assert configured.event_loop == "asyncio"
    assert authz_settings(configured).trust_domain_aliases == ("old.example.com",)


def test_webhook_serves_the_mounted_certificate(rendered: Rendered) -> None:
    deployment = one(rendered["defaults"], "Deployment", "-webhook")
    c = container(deployment, "webhook")
    args = _parse(c["args"])
    mount = next(m for m in c["volumeMounts"] if m["name"] == "webhook-tls")
    assert args.tls_cert == f"{mount['mountPath']}/tls.crt"
    assert args.tls_key == f"{mount['mountPath']}/tls.key"
    assert args.port == 8443


@pytest.mark.parametrize(("toggle", "publish"), [("defaults", True), ("mesh-ca-existing", False)])
def test_mesh_ca_serves_the_mounted_key_and_publishes_its_root(
    rendered: Rendered, toggle: str, publish: bool
) -> None:
    c = container(one(rendered[toggle], "Deployment", "-ca"))
    ca = ca_settings(_parse(c["args"]))
    mount = next(m for m in c["volumeMounts"] if m["name"] == "mesh-ca")
    assert str(ca.ca_cert) == f"{mount['mountPath']}/tls.crt"
    assert str(ca.ca_key) == f"{mount['mountPath']}/tls.key"
    assert "mg-meshguard-ca.meshguard-system.svc" in ca.serving_hosts
    assert ca.token_verifier == "tokenreview"
    assert ca.publish_root_cert is publish
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert (ca.grpc_port, ca.admin_port) == (ports["grpc-ca"], ports["http-admin"])


def test_root_publishing_follows_the_injection_label(helm: Helm) -> None:
    """The CA publishes where the chart's injection webhook selects, whatever the label."""
    relabelled = helm.template({"webhook": {"injection": {"namespaceLabel": "mesh"}}})
    webhook = one(relabelled, "MutatingWebhookConfiguration")["webhooks"][0]
    label = next(
        e for e in webhook["namespaceSelector"]["matchExpressions"] if e["operator"] == "In"
    )
    ca = ca_settings(_parse(container(one(relabelled, "Deployment", "-ca"))["args"]))
    assert ca.publish_root_cert_selectors == (f"{label['key']}={label['values'][0]}",)
    assert ca.publish_root_cert_selectors == ("mesh=enabled",)


def test_injector_points_sidecars_at_the_charts_services(rendered: Rendered) -> None:
    manifests = rendered["defaults"]
    config = injection_settings(_parse(container(one(manifests, "Deployment", "-webhook"))["args"]))
    ports = {
        s["metadata"]["name"]: {p["name"]: p["port"] for p in s["spec"]["ports"]}
        for s in find(manifests, "Service")
    }
    suffix = f".{NAMESPACE}.svc.cluster.local"
    assert config.ca_address == f"mg-meshguard-ca{suffix}:{ports['mg-meshguard-ca']['grpc-ca']}"
    authz = ports["mg-meshguard-authz"]["grpc-authz"]
    assert config.authz_address == f"mg-meshguard-authz{suffix}:{authz}"
    ratelimit = ports["mg-meshguard-ratelimit"]["grpc-ratelimit"]
    assert config.ratelimit_address == f"mg-meshguard-ratelimit{suffix}:{ratelimit}"
    assert config.proxy_image == "ghcr.io/meshguard/proxy:0.1.0"
    assert (config.policy, config.mtls_mode, config.trust_domain) == (
        "enabled",
        "STRICT",
        "cluster.local",
    )
