"""``meshguard explain``: decision plus a per-rule trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.cli import main
from tests.authz.support import ap

POLICIES = ap(
    "{selector: {matchLabels: {app: web}}, rules: ["
    "{to: [{operation: {paths: ['/public/*']}}]}, "
    "{to: [{operation: {paths: ['/admin/*']}}], "
    "when: [{key: 'request.auth.claims[groups]', values: [admin]}]}, "
    "{to: [{operation: {methods: [GET]}}], from: [{source: {ipBlocks: [192.0.2.0/24]}}]}]}"
) + ap("{action: DENY, rules: [{to: [{operation: {paths: ['/internal/*']}}]}]}", name="deny")


def _run(tmp_path: Path, request: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "p.yaml").write_text(POLICIES)
    (tmp_path / "r.yaml").write_text(request)
    code = main(
        ["explain", "--policies", str(tmp_path / "p.yaml"), "--request", str(tmp_path / "r.yaml")]
    )
    return code, capsys.readouterr().out


def test_allowed_request_names_policy_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(
        tmp_path,
        "namespace: foo\nlabels: {app: web}\nsource: {ip: 10.0.0.1}\n"
        "http: {host: svc, method: GET, path: /admin/x}\nclaims: {groups: [admin]}\n",
        capsys,
    )
    assert code == 0
    assert out.startswith("decision: ALLOW (allow_policy by foo/p rule[1])")
    assert "rule[0]: no match" in out and "FAIL to[0].paths" in out
    assert "ok   when[0] request.auth.claims[groups]" in out


def test_denied_request_and_tcp_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        tmp_path,
        "namespace: foo\nlabels: app=web\nsource: {ip: 192.0.2.9}\ndestination: {port: 80}\n",
        capsys,
    )
    assert code == 0
    # The DENY rule only uses paths: on TCP it loses them and denies every connection.
    assert out.startswith("decision: DENY (deny_policy by foo/deny rule[0])")
    assert "protocol: tcp" in out
    assert "rule[2]: dropped (uses HTTP-only fields on a TCP connection)" in out


def test_bad_request_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(tmp_path, "namespace: foo\nsource: {ip: bogus}\n", capsys)
    assert code == 1
