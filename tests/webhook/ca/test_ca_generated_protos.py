"""The committed generated code of protos/ is exactly what grpcio-tools generates now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_committed_code_matches_regeneration(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    spec = importlib.util.spec_from_file_location("protos_generate", ROOT / "protos/generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    sys.modules["protos_generate"] = generate
    spec.loader.exec_module(generate)
    written = generate.generate(tmp_path)
    assert written, "no .proto file was generated"
    for relative in written:
        committed = generate.COMMITTED / relative
        assert committed.exists(), f"{relative} is not committed; run python protos/generate.py"
        assert committed.read_text() == (tmp_path / relative).read_text(), (
            f"{relative} is stale; run python protos/generate.py"
        )
