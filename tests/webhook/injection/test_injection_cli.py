"""``meshguard inject -f``: pods and workload templates injected, other documents untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshguard.cli import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/injection/deployment.yaml"


def test_injects_the_deployment_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend"}}
    source = tmp_path / "all.yaml"
    source.write_text(EXAMPLE.read_text() + "---\n" + yaml.safe_dump(service))
    assert main(["inject", "-f", str(source)]) == 0
    deployment, untouched = list(yaml.safe_load_all(capsys.readouterr().out))
    template = deployment["spec"]["template"]
    assert [c["name"] for c in template["spec"]["containers"]] == ["frontend", "meshguard-proxy"]
    init = template["spec"]["initContainers"][0]["command"][2]
    assert "--dport 9100 -j RETURN" in init
    assert untouched == service


def test_bad_annotation_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"sidecar.meshguard.io/mtlsMode": "MAYBE"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump(pod))
    assert main(["inject", "-f", str(source)]) == 1
    assert "sidecar.meshguard.io/mtlsMode" in capsys.readouterr().err


def test_settings_come_from_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["inject", "-f", str(EXAMPLE), "--inject-proxy-image", "example/proxy:1"]
    assert main([*argv, "--inject-authz-address", "authz.example:9000"]) == 0
    deployment = yaml.safe_load(capsys.readouterr().out)
    proxy = deployment["spec"]["template"]["spec"]["containers"][1]
    assert proxy["image"] == "example/proxy:1"
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert '"address":"authz.example","port_value":9000' in env["MESHGUARD_ENVOY_BOOTSTRAP"]
