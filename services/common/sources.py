"""Which files a set of configured paths stands for, read as one consistent set.

A directory means every regular file below it, skipping dot-files and dot-directories: that is
what makes a Kubernetes ConfigMap mount (``..data`` symlink, ``..2024_01_01_...`` directories)
load each file exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclasses.dataclass(frozen=True, slots=True)
class SourceFile:
    """A config file's name as the user configured it, and its bytes at read time."""

    path: str
    text: str


def discover(paths: Iterable[str | Path], suffixes: Sequence[str] | None = None) -> list[Path]:
    """Expand files and directories into a sorted list of files.

    Explicitly named files are always included; files found in directories are filtered by
    ``suffixes`` when given. A missing path raises FileNotFoundError naming it.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_walk(path, suffixes))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return found


def _walk(root: Path, suffixes: Sequence[str] | None) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if suffixes is not None and not name.endswith(tuple(suffixes)):
                continue
            candidate = Path(dirpath) / name
            if candidate.is_file():
                files.append(candidate)
    return files


def fingerprint(paths: Iterable[str | Path], suffixes: Sequence[str] | None = None) -> str:
    """A cheap signature (stat data of the resolved files) that changes when any file does.

    Resolving symlinks makes the ConfigMap ``..data`` swap visible even when sizes and times of
    the new files equal the old ones.
    """
    digest = hashlib.blake2b(digest_size=16)
    for raw in paths:
        digest.update(str(raw).encode())
        try:
            files = discover([raw], suffixes)
        except FileNotFoundError:
            digest.update(b"\0missing")
            continue
        for path in files:
            try:
                real = path.resolve()
                st = real.stat()
            except OSError:
                continue
            digest.update(f"{path}\0{real}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()


def read(paths: Sequence[Path]) -> list[SourceFile]:
    return [SourceFile(str(p), p.read_text(encoding="utf-8")) for p in paths]


def content_version(files: Iterable[SourceFile]) -> str:
    """A content hash of a set of files: the snapshot version users see in ``/config``."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.path.encode() + b"\0" + f.text.encode() + b"\0")
    return digest.hexdigest()[:16]
