"""The policy and rate-limit ConfigMaps the chart renders load in the real services.

Each ConfigMap is laid out the way the kubelet mounts it (a timestamped directory, ``..data``
pointing at it, one symlink per key) and loaded through the service's own ConfigStore and
compile function, with the settings parsed from the Deployment's rendered args.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from meshguard.authz import loader
from meshguard.authz.runtime import engine_options
from meshguard.authz.settings import from_args as authz_settings
from meshguard.cli import build_parser
from meshguard.common.configstore import ConfigStore
from meshguard.common.findings import FindingsError
from meshguard.ratelimit.cli import compiler as ratelimit_compiler
from meshguard.ratelimit.settings import from_args as ratelimit_settings
from tests.chart.helm import Helm, container, one
from tests.chart.toggles import DOMAINS, POLICIES

Rendered = dict[str, list[dict[str, Any]]]


def mount_configmap(configmap: dict[str, Any], directory: Path) -> Path:
    """Write ``data`` as the kubelet does: files in ``..<timestamp>/``, reached via ``..data``."""
    directory.mkdir(parents=True)
    payload = directory / "..2026_01_01_00_00_00.000000001"
    payload.mkdir()
    for key, text in (configmap.get("data") or {}).items():
        (payload / key).write_text(text)
        (directory / key).symlink_to(Path("..data") / key)
    (directory / "..data").symlink_to(payload.name)
    return directory


def _mounted(manifests: list[dict[str, Any]], service: str, volume: str, tmp: Path) -> Path:
    deployment = one(manifests, "Deployment", f"-{service}")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    name = volumes[volume]["configMap"]["name"]
    configmap = next(
        m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == name
    )
    return mount_configmap(configmap, tmp / volume)


def _load_authz(manifests: list[dict[str, Any]], tmp: Path) -> Any:
    c = container(one(manifests, "Deployment", "-authz"))
    settings = authz_settings(build_parser().parse_args(c["args"]))
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "policies")
    assert settings.policies == (mount,)
    settings = dataclasses.replace(
        settings, policies=(str(_mounted(manifests, "authz", "policies", tmp)),)
    )
    store = ConfigStore(
        "authz-policies", settings.policies, loader.compiler(engine_options(settings))
    )
    store.load()
    return store.current.value


def _load_ratelimit(manifests: list[dict[str, Any]], tmp: Path) -> Any:
    c = container(one(manifests, "Deployment", "-ratelimit"))
    settings = ratelimit_settings(build_parser().parse_args(c["args"]), environ={})
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "config")
    assert settings.config_paths == (mount,)
    directory = _mounted(manifests, "ratelimit", "config", tmp)
    store = ConfigStore(
        "ratelimit", [str(directory)], ratelimit_compiler(settings.compile), suffixes=None
    )
    store.load()
    return store.current.value


def test_rendered_policies_load_in_authz(rendered: Rendered, tmp_path: Path) -> None:
    policies = _load_authz(rendered["configs"], tmp_path)
    assert len(policies.policies) == 1
    assert len(policies.authentications) == 1


def test_rendered_domains_load_in_ratelimit(rendered: Rendered, tmp_path: Path) -> None:
    config = _load_ratelimit(rendered["configs"], tmp_path)
    assert set(config.domains) == {d["domain"] for d in DOMAINS}
    assert "edge.remote_address" in config.dump()


def test_default_empty_configs_load(rendered: Rendered, tmp_path: Path) -> None:
    _load_authz(rendered["defaults"], tmp_path / "authz")
    assert _load_ratelimit(rendered["defaults"], tmp_path / "ratelimit").domains == {}


def test_a_policy_the_service_rejects_is_caught(helm: Helm, tmp_path: Path) -> None:
    """The load really validates: a policy with a bad action fails through the same path."""
    broken = [{**POLICIES[0], "spec": {**POLICIES[0]["spec"], "action": "PERMIT"}}]
    manifests = helm.template({"authz": {"policies": broken}})
    with pytest.raises(FindingsError, match="action"):
        _load_authz(manifests, tmp_path)
