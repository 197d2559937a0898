"""Helpers for webhook tests: build resources and summarise findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource, from_dict
from meshguard.registry import default_registry
from tests.harness import paths

CONFORMANCE = paths.CONFORMANCE / "webhook"
SAMPLES = paths.CONFORMANCE / "istio-samples"

GROUPS = {
    "Gateway": "networking.istio.io",
    "VirtualService": "networking.istio.io",
    "DestinationRule": "networking.istio.io",
    "ServiceEntry": "networking.istio.io",
    "Sidecar": "networking.istio.io",
    "PeerAuthentication": "security.istio.io",
    "AuthorizationPolicy": "security.istio.io",
    "RequestAuthentication": "security.istio.io",
}


def make(
    kind: str,
    spec: dict[str, Any],
    *,
    name: str = "test",
    namespace: str = "shop",
    version: str = "v1",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Resource:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    return from_dict(
        {
            "apiVersion": f"{GROUPS[kind]}/{version}",
            "kind": kind,
            "metadata": metadata,
            "spec": spec,
        }
    )


def check(kind: str, spec: dict[str, Any], **kwargs: Any) -> list[Finding]:
    return default_registry().validate(make(kind, spec, **kwargs))


def errors(findings: list[Finding]) -> dict[str, str]:
    return {f.path: f.message for f in findings if f.is_error}


def warnings(findings: list[Finding]) -> dict[str, str]:
    return {f.path: f.message for f in findings if not f.is_error}


def load_case(path: Path) -> tuple[dict[str, list[str]], Resource]:
    """The ``# key: value`` header of a conformance file, and its resource."""
    text = path.read_text()
    header: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        header.setdefault(key, []).append(value)
    return header, from_dict(yaml.safe_load(text))
