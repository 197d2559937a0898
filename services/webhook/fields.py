"""Typed reads from a decoded spec, with a shared sink for findings.

Validators walk the JSON the API server sends. Wrong types are reported once by the structural
schema check (:mod:`meshguard.webhook.schema`), so these readers return ``None`` for a value of
the wrong type instead of reporting it again, and never raise: a validator must survive any input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from meshguard.common.findings import Finding, error, warning


class Report:
    """Collects the findings of one validation run."""

    __slots__ = ("findings",)

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, path: str, message: str) -> None:
        self.findings.append(error(path, message))

    def warn(self, path: str, message: str) -> None:
        self.findings.append(warning(path, message))

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)


class Node:
    """A mapping at a field path, read through type-checking accessors."""

    __slots__ = ("data", "path", "report")

    def __init__(self, data: Mapping[str, Any], path: str, report: Report) -> None:
        self.data = data
        self.path = path
        self.report = report

    def at(self, key: str) -> str:
        path = self.path
        return f"{path}.{key}" if path else key

    def has(self, key: str) -> bool:
        """True when the key is present with a non-null value (how protobuf sees "set")."""
        return self.data.get(key) is not None

    def error(self, key: str, message: str) -> None:
        self.report.error(self.at(key) if key else self.path, message)

    def warn(self, key: str, message: str) -> None:
        self.report.warn(self.at(key) if key else self.path, message)

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        return None if value is None else as_int(value)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        return value if isinstance(value, bool) else None

    def child(self, key: str) -> Node | None:
        value = self.data.get(key)
        if value is None or not (type(value) is dict or is_map(value)):
            return None  # most reads are of absent fields: no call, no path
        return Node(value, self.at(key), self.report)

    def array(self, key: str) -> list[Any] | None:
        value = self.data.get(key)
        return value if isinstance(value, list) else None

    def children(self, key: str) -> Iterator[tuple[int, Node]]:
        """(index, node) for each mapping element of a list field."""
        values = self.data.get(key)
        if not values or not isinstance(values, list):
            return
        base, report = self.at(key), self.report
        for index, value in enumerate(values):
            if type(value) is dict or is_map(value):
                yield index, Node(value, f"{base}[{index}]", report)

    def strings(self, key: str) -> Iterator[tuple[str, str]]:
        """(path, value) for each string element of a list field."""
        values = self.data.get(key)
        if not values or not isinstance(values, list):
            return
        base = self.at(key)
        for index, value in enumerate(values):
            if isinstance(value, str):
                yield f"{base}[{index}]", value

    def string_map(self, key: str) -> dict[str, str] | None:
        """A map of strings (labels, header operations); ``None`` when absent or not a map."""
        value = self.data.get(key)
        if value is None or not is_map(value):
            return None
        return {str(k): v for k, v in value.items() if isinstance(v, str)}

    def keys(self) -> set[str]:
        return {k for k, v in self.data.items() if v is not None}


_NEVER_MAPS = (str, int, float, list, type(None))


def is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Decoded JSON is plain dicts and scalars: tested first, because the ``Mapping`` ABC check
    they would otherwise fall through to is the slowest step of reading a missing field."""
    if type(value) is dict or isinstance(value, dict):
        return True
    if isinstance(value, _NEVER_MAPS):
        return False
    return isinstance(value, Mapping)


def as_int(value: object) -> int | None:
    """An integer JSON value; int64 fields may arrive as decimal strings (protobuf JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
