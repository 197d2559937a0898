"""The real ``helm`` binary, found or fetched, and a typed way to render the chart with it.

Helm comes from PATH, ``$MESHGUARD_HELM``, or the cache that ``tools/get-helm.sh`` fills (that
script is run once if nothing else is found). Tests skip only when all of that fails.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "meshguard"
GET_HELM = REPO / "tools" / "get-helm.sh"
NAMESPACE = "meshguard-system"
RELEASE = "mg"

Manifest = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; the message is its stderr."""


def _usable(candidate: str | os.PathLike[str] | None) -> Path | None:
    if not candidate:
        return None
    path = Path(candidate)
    if not (path.is_file() and os.access(path, os.X_OK)):
        return None
    probe = subprocess.run([path, "version", "--short"], capture_output=True, text=True)
    return path if probe.returncode == 0 and probe.stdout.startswith(("v3.", "v4.")) else None


def find_helm() -> tuple[Path | None, str]:
    """The helm binary, or None and why it could not be had."""
    for candidate in (os.environ.get("MESHGUARD_HELM"), shutil.which("helm")):
        if found := _usable(candidate):
            return found, ""
    fetched = subprocess.run(["bash", str(GET_HELM)], capture_output=True, text=True, timeout=600)
    if fetched.returncode == 0 and (found := _usable(fetched.stdout.strip().splitlines()[-1])):
        return found, ""
    return None, f"tools/get-helm.sh could not provide helm: {fetched.stderr.strip()[-500:]}"


@dataclasses.dataclass(frozen=True, slots=True)
class Helm:
    binary: Path

    def run(self, args: Sequence[str], values: Mapping[str, Any] | None = None) -> str:
        """stdout of ``helm <args> [-f values.yaml]``; HelmError carries stderr on failure."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
            yaml.safe_dump(dict(values or {}), fh)
            fh.flush()
            done = subprocess.run(
                [str(self.binary), *args, "-f", fh.name],
                capture_output=True,
                text=True,
                timeout=120,
            )
        if done.returncode != 0:
            raise HelmError(done.stderr.strip())
        return done.stdout

    def template(self, values: Mapping[str, Any] | None = None) -> list[Manifest]:
        out = self.run(["template", RELEASE, str(CHART), "-n", NAMESPACE], values)
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def notes(self, values: Mapping[str, Any] | None = None) -> str:
        """NOTES.txt as ``helm install`` prints it (a client-side dry run, no cluster)."""
        args = ["install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client"]
        out = self.run(args, values)
        return out.split("NOTES:\n", 1)[1]

    def lint(self, values: Mapping[str, Any] | None = None) -> str:
        return self.run(["lint", "--strict", str(CHART), "-n", NAMESPACE], values)


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """The manifests of one kind (and name suffix, e.g. ``-authz``)."""
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"].endswith(name))
    ]


def one(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def container(deployment: Manifest, name: str | None = None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)
