"""Loading Kubernetes-style resources: typed envelopes and errors with file, doc and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.common.findings import FindingsError
from meshguard.common.resources import load_paths, parse_text

POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: foo
  labels: {team: a}
spec: {}
"""


def test_envelope_fields() -> None:
    [res] = parse_text(POLICY, "p.yaml")
    assert (res.group, res.version, res.kind) == ("security.istio.io", "v1", "AuthorizationPolicy")
    assert res.metadata.name == "deny-all" and res.metadata.namespace == "foo"
    assert dict(res.metadata.labels) == {"team": "a"}
    assert res.ref == "AuthorizationPolicy foo/deny-all"
    assert str(res.origin) == "p.yaml:0"


def test_core_group_is_empty() -> None:
    [res] = parse_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "s.yaml")
    assert res.group == "" and res.version == "v1"


def test_multi_document_and_list_expansion() -> None:
    text = (
        POLICY
        + "---\n---\napiVersion: v1\nkind: List\nitems:\n"
        + "".join(
            f"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c{i}}}\n" for i in range(2)
        )
    )
    resources = parse_text(text, "m.yaml")
    assert [r.kind for r in resources] == ["AuthorizationPolicy", "ConfigMap", "ConfigMap"]
    assert [r.origin.doc for r in resources if r.origin] == [0, 2, 2]


def test_errors_name_file_doc_and_field() -> None:
    text = POLICY + "---\napiVersion: v1\nmetadata: {name: 3, labels: {a: 1}}\nspec: []\n"
    with pytest.raises(FindingsError) as exc:
        parse_text(text, "bad.yaml")
    lines = str(exc.value).splitlines()
    assert "bad.yaml:1:kind: error: must be a non-empty string" in lines
    assert "bad.yaml:1:metadata.name: error: must be a string" in lines
    assert "bad.yaml:1:metadata.labels[a]: error: must be a string, got int" in lines
    assert "bad.yaml:1:spec: error: must be a mapping" in lines


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(
        FindingsError, match=r"x.yaml:0:<root>: error: invalid YAML: line 3, column 1"
    ):
        parse_text("a: 1\nb: [\n", "x.yaml")


def test_scalar_document_is_rejected() -> None:
    with pytest.raises(FindingsError, match="document must be a mapping, got str"):
        parse_text("just a string\n", "s.yaml")


def test_directories_load_yaml_files_and_skip_hidden(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY)
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.yaml").write_text("not: [valid")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.yml").write_text(POLICY.replace("deny-all", "other"))
    names = [r.metadata.name for r in load_paths([tmp_path])]
    assert names == ["deny-all", "other"]


def test_all_files_problems_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [\n")
    (tmp_path / "b.yaml").write_text("kind: X\n")
    with pytest.raises(FindingsError) as exc:
        load_paths([tmp_path])
    assert {f.file for f in exc.value.findings} == {
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
    }
