"""Validation findings: what is wrong, where (file, document, field path) and how badly."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a resource.

    ``path`` is a field path in Istio's style (``spec.http[0].route[1].weight``); ``file`` and
    ``doc`` (0-based document index in a multi-document YAML file) are filled in by whoever knows
    where the resource came from.
    """

    path: str
    severity: Severity
    message: str
    file: str | None = None
    doc: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def located(self, file: str | None, doc: int | None) -> Finding:
        return dataclasses.replace(self, file=file, doc=doc)

    def __str__(self) -> str:
        where = self.path or "<root>"
        if self.file is not None:
            where = f"{self.file}:{self.doc if self.doc is not None else 0}:{where}"
        return f"{where}: {self.severity}: {self.message}"


def error(path: str, message: str) -> Finding:
    return Finding(path, Severity.ERROR, message)


def warning(path: str, message: str) -> Finding:
    return Finding(path, Severity.WARNING, message)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.is_error for f in findings)


def field(parent: str, name: str) -> str:
    """Path of a named field below ``parent`` (the root has the empty path)."""
    return f"{parent}.{name}" if parent else name


def item(parent: str, index: int | str) -> str:
    """Path of a list element (or map entry, when ``index`` is a key) below ``parent``."""
    return f"{parent}[{index}]"


class FindingsError(Exception):
    """Raised where findings stop a load: carries them so the boundary can report each one."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(str(f) for f in self.findings))
