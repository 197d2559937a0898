"""Kubernetes-style resources (apiVersion / kind / metadata / spec) read from YAML.

This is the edge where raw YAML becomes typed objects: the rest of meshguard works with
:class:`Resource` and each kind's own model built from ``spec``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from meshguard.common import sources
from meshguard.common.findings import Finding, FindingsError, Severity, error

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str
    namespace: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=lambda: EMPTY)


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource was read from: file name and 0-based document index."""

    file: str
    doc: int

    def __str__(self) -> str:
        return f"{self.file}:{self.doc}"


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Mapping[str, Any]
    raw: Mapping[str, Any]
    origin: Origin | None = None

    @property
    def group(self) -> str:
        """API group (``security.istio.io``); empty for the core group (``apiVersion: v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def ref(self) -> str:
        """``Kind namespace/name``, how messages name a resource."""
        ns = f"{self.metadata.namespace}/" if self.metadata.namespace else ""
        return f"{self.kind} {ns}{self.metadata.name}"

    def locate(self, finding: Finding) -> Finding:
        if self.origin is None:
            return finding
        return finding.located(self.origin.file, self.origin.doc)


def from_dict(doc: Mapping[str, Any], origin: Origin | None = None) -> Resource:
    """Build a Resource from one decoded object; raises FindingsError on a malformed envelope."""
    problems: list[Finding] = []
    api_version = doc.get("apiVersion")
    kind = doc.get("kind")
    if not isinstance(api_version, str) or not api_version:
        problems.append(error("apiVersion", "must be a non-empty string"))
    if not isinstance(kind, str) or not kind:
        problems.append(error("kind", "must be a non-empty string"))
    meta_raw = doc.get("metadata", {})
    if meta_raw is None:
        meta_raw = {}
    if not isinstance(meta_raw, Mapping):
        problems.append(error("metadata", "must be a mapping"))
        meta_raw = {}
    name = meta_raw.get("name", "")
    namespace = meta_raw.get("namespace", "") or ""
    if not isinstance(name, str):
        problems.append(error("metadata.name", "must be a string"))
    if not isinstance(namespace, str):
        problems.append(error("metadata.namespace", "must be a string"))
    labels = _string_map(meta_raw.get("labels"), "metadata.labels", problems)
    annotations = _string_map(meta_raw.get("annotations"), "metadata.annotations", problems)
    spec = doc.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        problems.append(error("spec", "must be a mapping"))
    if problems:
        raise FindingsError(_locate_all(problems, origin))
    return Resource(
        api_version=str(api_version),
        kind=str(kind),
        metadata=ObjectMeta(str(name), str(namespace), labels, annotations),
        spec=spec,
        raw=doc,
        origin=origin,
    )


def _string_map(value: object, path: str, problems: list[Finding]) -> Mapping[str, str]:
    if value is None:
        return EMPTY
    if not isinstance(value, Mapping):
        problems.append(error(path, "must be a mapping of strings"))
        return EMPTY
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            problems.append(error(f"{path}[{k}]", f"must be a string, got {type(v).__name__}"))
            continue
        out[k] = v
    return MappingProxyType(out)


def _locate_all(findings: Iterable[Finding], origin: Origin | None) -> list[Finding]:
    if origin is None:
        return list(findings)
    return [f.located(origin.file, origin.doc) for f in findings]


def parse_documents(text: str, file: str) -> Iterator[tuple[int, Any]]:
    """Yield (document index, decoded object) for each non-empty YAML document.

    A syntax error raises FindingsError naming the file, document and line.
    """
    index = 0  # the document being parsed, so a syntax error names the right one
    try:
        for parsed, doc in enumerate(yaml.load_all(text, Loader=_Loader)):
            index = parsed + 1
            if doc is not None:
                yield parsed, doc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FindingsError(
            [Finding("", Severity.ERROR, f"invalid YAML: {where}{problem}", file, index)]
        ) from exc


def parse_text(text: str, file: str) -> list[Resource]:
    """All resources in a (multi-document) YAML text; ``kind: List`` objects are expanded."""
    resources, problems = _parse(text, file)
    if problems:
        raise FindingsError(problems)
    return resources


def _parse(text: str, file: str) -> tuple[list[Resource], list[Finding]]:
    """Every well-formed resource of a text, and the problems of the rest."""
    resources: list[Resource] = []
    problems: list[Finding] = []
    try:
        for index, doc in parse_documents(text, file):
            origin = Origin(file, index)
            for item in _expand(doc, origin, problems):
                try:
                    resources.append(from_dict(item, origin))
                except FindingsError as exc:
                    problems.extend(exc.findings)
    except FindingsError as exc:
        problems.extend(exc.findings)
    return resources, problems


def _expand(doc: object, origin: Origin, problems: list[Finding]) -> list[Mapping[str, Any]]:
    if not isinstance(doc, Mapping):
        problems.append(
            error("", f"document must be a mapping, got {type(doc).__name__}").located(
                origin.file, origin.doc
            )
        )
        return []
    kind = str(doc.get("kind", ""))
    if kind.endswith("List") and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            problems.append(error("items", "must be a list").located(origin.file, origin.doc))
            return []
        return [i for i in items if isinstance(i, Mapping)]
    return [doc]


def load_paths(paths: Iterable[str | Path]) -> list[Resource]:
    """Resources from files, directories (``*.yaml|yml|json`` below them) and ``-`` (stdin);
    every file's problems are raised together."""
    resources, problems = read_paths(paths)
    if problems:
        raise FindingsError(problems)
    return resources


def load_sources(files: Iterable[sources.SourceFile]) -> list[Resource]:
    """Like :func:`load_paths` for files already read (the config store's input)."""
    resources, problems = read_sources(files)
    if problems:
        raise FindingsError(problems)
    return resources


def read_paths(paths: Iterable[str | Path]) -> tuple[list[Resource], list[Finding]]:
    """Lenient :func:`load_paths`: the good resources *and* the problems, so a checker can
    report a broken file and still check the rest. A missing path is a problem, too."""
    named = [str(p) for p in paths]
    texts: list[sources.SourceFile] = []
    problems: list[Finding] = []
    if "-" in named:
        texts.append(sources.SourceFile("<stdin>", sys.stdin.read()))
    for path in named:
        if path == "-":
            continue
        try:
            texts.extend(sources.read(sources.discover([path], sources.YAML_SUFFIXES)))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(error("", str(exc)).located(path, 0))
    resources, parse_problems = read_sources(texts)
    return resources, problems + parse_problems


def read_sources(files: Iterable[sources.SourceFile]) -> tuple[list[Resource], list[Finding]]:
    resources: list[Resource] = []
    problems: list[Finding] = []
    for source in files:
        good, bad = _parse(source.text, source.path)
        resources.extend(good)
        problems.extend(bad)
    return resources, problems
