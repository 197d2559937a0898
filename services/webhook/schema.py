"""Checks against Istio's CRD schemas (OpenAPI v3 + CEL), the layer the API server enforces.

Two outputs, because they are used differently:

* structural findings, part of every validator: errors for what Istio's webhook also refuses
  when it decodes ``spec`` (wrong type, unknown enum value, bounds, ``required``, "only one of"),
  and warnings for unknown fields with their path (typos like ``retry:``). Istio decodes
  leniently, so an unknown field never denies; it is reported so kubectl prints it;
* CEL rule failures: the API server's own messages, reported offline by ``analyze`` (the
  validators implement the same rules with their own messages).

The CRDs ship inside the package (``crds/``) so an installed meshguard needs no source tree.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from importlib import resources as package_files
from typing import Any

import re2
import yaml

from meshguard.common.findings import Finding, error, field, item, warning
from meshguard.common.resources import Resource
from meshguard.webhook import cel

CRD_FILE = "crd-all.gen.yaml"
Schema = Mapping[str, Any]
_JSON_TYPES = {
    "object": "object",
    "array": "array",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}
_CONSTRAINT_KEYS = frozenset(
    {
        "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "minItems",
        "maxItems", "minProperties", "maxProperties", "required", "oneOf", "allOf",
    }
)  # fmt: skip
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class CrdSchemas:
    """OpenAPI schemas by (group, kind, version), with each kind's storage version."""

    def __init__(self, documents: list[Mapping[str, Any]]) -> None:
        self._schemas: dict[tuple[str, str, str], Schema] = {}
        self._storage: dict[tuple[str, str], str] = {}
        for crd in documents:
            spec = crd.get("spec") or {}
            group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
            for version in spec.get("versions") or []:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if isinstance(schema, Mapping):
                    self._schemas[(group, kind, version["name"])] = schema
                if version.get("storage"):
                    self._storage[(group, kind)] = version["name"]

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._storage)

    def versions(self, group: str, kind: str) -> list[str]:
        return sorted(v for g, k, v in self._schemas if (g, k) == (group, kind))

    def lookup(self, group: str, kind: str, version: str) -> Schema | None:
        """The schema of a served version, else the storage version's (versions share fields)."""
        found = self._schemas.get((group, kind, version))
        if found is None and (group, kind) in self._storage:
            found = self._schemas.get((group, kind, self._storage[(group, kind)]))
        return found

    def all_schemas(self) -> list[Schema]:
        return list(self._schemas.values())


@functools.cache
def istio_crds() -> CrdSchemas:
    text = package_files.files("meshguard.webhook").joinpath("crds", CRD_FILE).read_text()
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return CrdSchemas([d for d in yaml.load_all(text, Loader=loader) if isinstance(d, Mapping)])


class _Walk:
    __slots__ = ("cel", "out", "structural", "unknown")

    def __init__(self, *, structural: bool, unknown: bool, cel: bool) -> None:
        self.structural = structural
        self.unknown = unknown
        self.cel = cel
        self.out: list[Finding] = []

    def value(self, value: Any, schema: Schema, path: str) -> None:
        if value is None:
            return
        if not self._type_ok(value, schema, path):
            return
        if self.structural:
            self._constraints(value, schema, path)
        if self.cel:
            for rule in schema.get("x-kubernetes-validations") or []:
                if cel.holds(rule.get("rule", ""), value) is False:
                    self.out.append(error(path, rule.get("message") or f"failed: {rule['rule']}"))
        if _is_map(value):
            self._object(value, schema, path)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, element in enumerate(value):
                    self.value(element, items, item(path, index))

    def _type_ok(self, value: Any, schema: Schema, path: str) -> bool:
        if schema.get("x-kubernetes-int-or-string"):
            ok = isinstance(value, int | str) and not isinstance(value, bool)
            expected = "integer or string"
        else:
            expected = schema.get("type", "")
            ok = _matches_type(value, expected)
        if not ok and self.structural:
            self.out.append(error(path, f"expected {expected}, got {_json_type(value)}"))
        return ok

    def _constraints(self, value: Any, schema: Schema, path: str) -> None:
        if schema.keys().isdisjoint(_CONSTRAINT_KEYS):
            return
        problems: list[str] = []
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            problems.append(
                f"unsupported value {value!r}: must be one of {', '.join(map(str, enum))}"
            )
        if isinstance(value, str):
            _bounds(len(value), schema, "minLength", "maxLength", "length", problems)
            pattern = schema.get("pattern")
            if isinstance(pattern, str) and not _pattern_matches(pattern, value):
                problems.append(f"{value!r} does not match the pattern {pattern}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            _bounds(value, schema, "minimum", "maximum", "value", problems)
        elif isinstance(value, list):
            _bounds(len(value), schema, "minItems", "maxItems", "number of items", problems)
        elif _is_map(value):
            _bounds(
                len(value), schema, "minProperties", "maxProperties", "number of entries", problems
            )
            for name in schema.get("required") or []:
                if value.get(name) is None:
                    self.out.append(error(field(path, name), f"{name} is required"))
            problems.extend(_one_of_problems(value, schema))
        self.out.extend(error(path, p) for p in problems)

    def _object(self, value: Mapping[str, Any], schema: Schema, path: str) -> None:
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            child_path = field(path, str(key))
            if isinstance(properties, Mapping) and key in properties:
                self.value(child, properties[key], child_path)
            elif isinstance(extra, Mapping):
                self.value(child, extra, f"{path}[{key}]")
            elif (
                self.unknown
                and properties is not None
                and not schema.get("x-kubernetes-preserve-unknown-fields")
            ):
                self.out.append(
                    warning(child_path, f"unknown field {key!r}{_suggest(key, properties)}")
                )


def _is_map(value: Any) -> bool:
    """Decoded JSON is plain dicts: test for dict first, the Mapping ABC check is slow."""
    return isinstance(value, (dict, Mapping))


def _matches_type(value: Any, expected: str) -> bool:
    if not expected:
        return True
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _json_type(value) == _JSON_TYPES.get(expected, expected)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if _is_map(value):
        return "object"
    return type(value).__name__


def _bounds(
    value: float, schema: Schema, low_key: str, high_key: str, what: str, problems: list[str]
) -> None:
    low, high = schema.get(low_key), schema.get(high_key)
    if isinstance(low, int | float) and value < low:
        problems.append(f"{what} {value} is below the minimum {low}")
    if isinstance(high, int | float) and value > high:
        problems.append(f"{what} {value} is above the maximum {high}")


def _pattern_matches(pattern: str, value: str) -> bool:
    try:
        return re2.search(pattern, value, options=_RE2_OPTIONS) is not None
    except re2.error:
        return True  # a pattern RE2 cannot compile is the schema's problem, not the user's


def _satisfies(value: Mapping[str, Any], schema: Schema) -> bool:
    """Whether an object meets a constraint-only subschema (required / not / anyOf / oneOf)."""
    if any(value.get(name) is None for name in schema.get("required") or []):
        return False
    negated = schema.get("not")
    if isinstance(negated, Mapping) and _satisfies(value, negated):
        return False
    any_of = schema.get("anyOf")
    if any_of and not any(_satisfies(value, s) for s in any_of):
        return False
    one_of = schema.get("oneOf")
    if one_of and sum(_satisfies(value, s) for s in one_of) != 1:
        return False
    return all(_satisfies(value, s) for s in schema.get("allOf") or [])


def _one_of_problems(value: Mapping[str, Any], schema: Schema) -> list[str]:
    """Istio encodes protobuf oneofs as oneOf/anyOf over ``required``; name the clashing fields."""
    problems: list[str] = []
    groups = [schema.get("oneOf") or []] + [s.get("oneOf") or [] for s in schema.get("allOf") or []]
    for group in groups:
        if group and sum(_satisfies(value, s) for s in group) != 1:
            names = sorted({n for s in group for n in s.get("required") or []})
            present = [n for n in names if value.get(n) is not None]
            problems.append(f"only one of {', '.join(names)} may be set, got {', '.join(present)}")
    return problems


def _suggest(key: object, properties: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(key), list(properties), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check(resource: Resource, *, structural: bool, unknown: bool, cel: bool) -> list[Finding]:
    schema = istio_crds().lookup(resource.group, resource.kind, resource.version)
    if schema is None:
        return []
    spec_schema = (schema.get("properties") or {}).get("spec")
    if not isinstance(spec_schema, Mapping):
        return []
    walk = _Walk(structural=structural, unknown=unknown, cel=cel)
    walk.value(resource.raw.get("spec"), spec_schema, "spec")
    return walk.out


def structural_findings(resource: Resource) -> list[Finding]:
    """Type, enum, bound, required and oneof errors; unknown fields as warnings."""
    return _check(resource, structural=True, unknown=True, cel=False)


def cel_findings(resource: Resource) -> list[Finding]:
    """CEL rule errors with the CRD's messages: the API server's checks, run offline."""
    return _check(resource, structural=False, unknown=False, cel=True)


def uncovered_cel_findings(resource: Resource, findings: Iterable[Finding]) -> list[Finding]:
    """CEL findings at paths (and below paths) where ``findings`` hold no error yet: what the
    API server would add to the webhook's verdict, for the offline checkers."""
    covered = {f.path for f in findings if f.is_error}
    return [
        f
        for f in cel_findings(resource)
        if not any(p == f.path or p.startswith((f"{f.path}.", f"{f.path}[")) for p in covered)
    ]


def knows(resource: Resource) -> bool:
    return istio_crds().lookup(resource.group, resource.kind, resource.version) is not None
