"""Regenerate the Python code of the project's .proto files into services/common/protos.

Run ``python protos/generate.py`` after editing a .proto file and commit the result;
tests/webhook/ca/test_generated_protos.py regenerates into a temporary directory and fails
when the committed code differs.

protoc is given the virtual include path ``meshguard/common/protos=protos`` so the generated
modules import each other as ``meshguard.common.protos.<proto package>``: the package
``meshguard`` is the folder ``services/``, where the committed code lives.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent
PACKAGE_PREFIX = Path("meshguard/common/protos")
COMMITTED = ROOT / "services/common/protos"


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTOS) for p in PROTOS.rglob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Generate every .proto into ``out_root`` (laid out like services/common/protos)."""
    with tempfile.TemporaryDirectory(prefix="meshguard-protoc-") as tmp:
        files = [str(p) for p in proto_files()]
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PACKAGE_PREFIX}={PROTOS}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                *(f"{PROTOS / f}" for f in files),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        generated_root = Path(tmp) / PACKAGE_PREFIX
        written = []
        for source in sorted(generated_root.rglob("*.py*")):
            target = out_root / source.relative_to(generated_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target.relative_to(out_root))
        return written


if __name__ == "__main__":
    for path in generate(COMMITTED):
        print(COMMITTED / path)
    sys.exit(0)
