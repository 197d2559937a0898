"""``meshguard validate``: output format and exit codes, through the real console entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshguard.cli import main

UNKNOWN = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshguard.cli", *argv], capture_output=True, text=True, timeout=60
    )


def test_unknown_kind_is_a_warning_and_exit_zero(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(UNKNOWN)
    result = run("validate", str(f))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{f}:0:kind: warning: no validator for Widget (example.com/v1); not checked"
    )


def test_parse_error_exit_one_with_location(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(UNKNOWN + "---\nkind: [\n")
    result = run("validate", str(f))
    assert result.returncode == 1
    assert f"{f}:1:<root>: error: invalid YAML" in result.stdout


def test_json_output(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nmetadata: {name: x}\n")
    result = run("validate", "--output", "json", str(f))
    assert result.returncode == 1
    assert json.loads(result.stdout) == [
        {
            "file": str(f),
            "doc": 0,
            "path": "kind",
            "severity": "error",
            "message": "must be a non-empty string",
        }
    ]


def test_missing_path_is_an_error(tmp_path: Path, capsys: object) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1


def test_version_and_no_command() -> None:
    result = run("version")
    assert result.returncode == 0 and result.stdout.startswith("meshguard ")
    assert run().returncode == 2


def test_crd_cel_rules_are_checked_offline(tmp_path: Path) -> None:
    """What the API server's CEL rules would refuse is reported even for kinds without a
    semantic validator, and not twice where a validator already named the field."""
    f = tmp_path / "we.yaml"
    f.write_text(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
        "metadata: {name: vm, namespace: shop}\nspec: {address: 10.0.0.1, ports: {http: 0}}\n"
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: se, namespace: shop}\nspec:\n  hosts: [api.example.com]\n"
        "  resolution: DNS\n  ports:\n  - {number: 443, name: a, protocol: HTTPS}\n"
        "  - {number: 443, name: b, protocol: TLS}\n"
    )
    result = run("validate", str(f))
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert errors == [
        f"{f}:0:spec.ports[http]: error: port must be between 1-65535",
        f"{f}:1:spec.ports[1].number: error: port number 443 is declared twice",
    ]
