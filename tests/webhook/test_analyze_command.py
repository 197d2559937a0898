from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from meshguard.cli import main
from meshguard.webhook.analysis import CODES
from tests.webhook.support import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
BROKEN_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v9}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["analyze", *argv])
    return code, capsys.readouterr().out


def test_bookinfo_has_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in SAMPLES.glob("bookinfo_networking_*.yaml"))
    assert files
    code, out = run(capsys, *files)
    assert code == 0 and "ERROR" not in out


def test_text_output_and_exit_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(BROKEN_VS)
    code, out = run(capsys, str(path))
    assert code == 1
    assert out.strip() == (
        "ERROR [MG0101] (VirtualService reviews.default) spec.http[0].route[0].destination.subset: "
        "subset 'v9' of host 'reviews.default.svc.cluster.local' is not defined by any "
        "DestinationRule"
    )


def test_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text(BROKEN_VS)
    code, out = run(capsys, str(tmp_path), "--output", "json")
    [item] = json.loads(out)
    assert code == 1
    assert item["code"] == "MG0101" and item["severity"] == "error" and item["doc"] == 0
    assert item["file"].endswith("vs.yaml")


def test_fail_on_warning(capsys: pytest.CaptureFixture[str]) -> None:
    details = str(SAMPLES / "bookinfo_networking_fault-injection-details-v1.yaml")
    assert run(capsys, details)[0] == 0
    assert run(capsys, details, "--fail-on", "warning")[0] == 1


def test_stdin_and_list(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g.x"},
         "spec": {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                               "hosts": ["*"]}]}}]}  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(listing)))
    code, out = run(capsys, "-")
    assert code == 1 and "[MG0001] (Gateway g.x.default) metadata.name" in out


def test_parse_errors_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    code, out = run(capsys, str(tmp_path))
    assert code == 1 and "[MG0004]" in out


def test_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "examples" / "webhook" / "README.md").read_text()
    for code in CODES.values():
        assert f"| {code.code} | {code.name} |" in readme
    assert run(capsys, "--list-codes")[0] == 0
