"""Checks against Istio's CRD schemas (OpenAPI v3 + CEL), the layer the API server enforces.

Two outputs, because they are used differently:

* structural findings, part of every validator: errors for what Istio's webhook also refuses
  when it decodes ``spec`` (wrong type, unknown enum value, bounds, ``required``, "only one of"),
  and warnings for unknown fields with their path (typos like ``retry:``). Istio's webhook
  decodes leniently; ours refuses them by default (:func:`is_unknown_field`, see
  ``--reject-unknown-fields``), as kubectl's strict field validation would;
* CEL rule failures: the API server's own messages, reported offline by ``analyze`` (the
  validators implement the same rules with their own messages).

The CRDs ship inside the package (``crds/``) so an installed meshguard needs no source tree.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from importlib import resources as package_files
from typing import Any

import re2
import yaml

from meshguard.common.findings import Finding, error, field, warning
from meshguard.common.resources import Resource
from meshguard.webhook import cel
from meshguard.webhook.fields import is_map

CRD_FILE = "crd-all.gen.yaml"
Schema = Mapping[str, Any]
_CONSTRAINT_KEYS = frozenset(
    {
        "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "minItems",
        "maxItems", "minProperties", "maxProperties", "required", "oneOf", "allOf",
    }
)  # fmt: skip
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

UNKNOWN_FIELD = "unknown field "


def is_unknown_field(finding: Finding) -> bool:
    """A field the CRD schema does not know (a typo such as ``retry:`` for ``retries:``)."""
    return finding.message.startswith(UNKNOWN_FIELD)


class CrdSchemas:
    """OpenAPI schemas by (group, kind, version), with each kind's storage version."""

    def __init__(self, documents: list[Mapping[str, Any]]) -> None:
        self._schemas: dict[tuple[str, str, str], Schema] = {}
        self._storage: dict[tuple[str, str], str] = {}
        self._compiled: dict[int, _Node | None] = {}
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

    def spec_node(self, group: str, kind: str, version: str) -> _Node | None:
        """The compiled schema of ``spec``: built on first use, then shared by every check."""
        schema = self.lookup(group, kind, version)
        if schema is None:
            return None
        key = id(schema)  # the schemas live as long as this object, so ids stay unique
        if key not in self._compiled:
            spec = (schema.get("properties") or {}).get("spec")
            self._compiled[key] = _Node(spec) if isinstance(spec, Mapping) else None
        return self._compiled[key]

    def all_schemas(self) -> list[Schema]:
        return list(self._schemas.values())


@functools.cache
def istio_crds() -> CrdSchemas:
    text = package_files.files("meshguard.webhook").joinpath("crds", CRD_FILE).read_text()
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return CrdSchemas([d for d in yaml.load_all(text, Loader=loader) if isinstance(d, Mapping)])


class _Node:
    """One schema node compiled for the walk: type test, constraints, CEL predicates and
    children resolved once, so checking a value does no schema lookups or regex compiles.
    CRD schemas are fully inlined (no ``$ref``), so compiling the tree eagerly terminates.

    ``leaf`` marks a node whose whole check is its type test (no constraints, rules or
    children): most fields of a spec, which the walk then checks inline without recursing."""

    __slots__ = ("accepts", "closed", "constraints", "expected", "extra", "fast", "items",
                 "leaf", "leaves", "properties", "rules")  # fmt: skip

    def __init__(self, schema: Schema) -> None:
        if schema.get("x-kubernetes-int-or-string"):
            self.expected = "integer or string"
            self.accepts: Callable[[Any], bool] = _int_or_string
        else:
            self.expected = schema.get("type", "")
            self.accepts = _type_test(self.expected)
        # Types an isinstance() proves acceptable, so most values skip the call to accepts.
        self.fast = _CERTAIN_TYPES.get(self.expected, ())
        self.constraints = (
            None if schema.keys().isdisjoint(_CONSTRAINT_KEYS) else _Constraints(schema)
        )
        self.rules = tuple(
            (check, rule.get("message") or f"failed: {rule['rule']}")
            for rule in schema.get("x-kubernetes-validations") or []
            if (check := cel.predicate(rule.get("rule", ""))) is not None
        )
        properties = schema.get("properties")
        self.properties = (
            {key: _Node(child) for key, child in properties.items()}
            if isinstance(properties, Mapping)
            else None
        )
        self.closed = properties is not None and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        extra, items = schema.get("additionalProperties"), schema.get("items")
        self.extra = _Node(extra) if isinstance(extra, Mapping) else None
        self.items = _Node(items) if isinstance(items, Mapping) else None
        self.leaf = (
            self.constraints is None
            and not self.rules
            and self.properties is None
            and self.extra is None
            and self.items is None
        )
        # Leaf properties apart: the walk's loop finds them, and that they are leaves, at once.
        self.leaves = {k: n for k, n in (self.properties or {}).items() if n.leaf}


class _Constraints:
    """A node's enum, bounds, pattern, ``required`` and oneof groups, read out of the schema;
    only the bounds that are set are kept, so checking a value tests nothing that cannot fail."""

    __slots__ = ("entries", "enum", "items", "length", "one_of", "pattern",
                 "pattern_text", "required", "size")  # fmt: skip

    def __init__(self, schema: Schema) -> None:
        enum = schema.get("enum")
        self.enum = tuple(enum) if enum is not None else None
        self.length = _limits(schema, "minLength", "maxLength")
        self.size = _limits(schema, "minimum", "maximum")
        self.items = _limits(schema, "minItems", "maxItems")
        self.entries = _limits(schema, "minProperties", "maxProperties")
        pattern = schema.get("pattern")
        self.pattern_text = pattern if isinstance(pattern, str) else None
        self.pattern = _compile(pattern) if isinstance(pattern, str) else None
        self.required = tuple(schema.get("required") or ())
        groups = [schema.get("oneOf") or []]
        groups += [s.get("oneOf") or [] for s in schema.get("allOf") or []]
        # Istio's oneofs all read "none, or exactly one of these names": those are counted
        # directly (``tests`` None); any other shape keeps the general test.
        self.one_of: tuple[tuple[tuple[str, ...], tuple[ObjectTest, ...] | None], ...] = tuple(
            (
                tuple(names),
                None if _is_at_most_one(group, names) else tuple(_satisfier(s) for s in group),
            )
            for group in groups
            if group
            for names in [sorted({n for s in group for n in s.get("required") or []})]
        )

    def check(self, value: Any, path: str, out: list[Finding]) -> None:
        if type(value) is dict and self.enum is None and self.entries is None:
            self._required(value, path, out)  # the common case: a message with oneofs
            self._one_ofs(value, path, out)
            return
        problems: list[str] = []
        if self.enum is not None and value not in self.enum:
            problems.append(
                f"unsupported value {value!r}: must be one of {', '.join(map(str, self.enum))}"
            )
        if isinstance(value, str):
            if self.length is not None:
                _bounds(len(value), self.length, "length", problems)
            if self.pattern is not None and self.pattern.search(value) is None:
                problems.append(f"{value!r} does not match the pattern {self.pattern_text}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if self.size is not None:
                _bounds(value, self.size, "value", problems)
        elif isinstance(value, list):
            if self.items is not None:
                _bounds(len(value), self.items, "number of items", problems)
        elif is_map(value):
            if self.entries is not None:
                _bounds(len(value), self.entries, "number of entries", problems)
            self._required(value, path, out)
            out.extend(error(path, p) for p in problems)
            self._one_ofs(value, path, out)
            return
        if problems:
            out.extend(error(path, p) for p in problems)

    def _required(self, value: Mapping[str, Any], path: str, out: list[Finding]) -> None:
        for name in self.required:
            if value.get(name) is None:
                out.append(error(field(path, name), f"{name} is required"))

    def _one_ofs(self, value: Mapping[str, Any], path: str, out: list[Finding]) -> None:
        for names, tests in self.one_of:
            present = [n for n in names if value.get(n) is not None]
            if len(present) > 1 if tests is None else sum(test(value) for test in tests) != 1:
                out.append(error(path, _only_one(names, present)))


def _only_one(names: Iterable[str], present: Iterable[str]) -> str:
    return f"only one of {', '.join(names)} may be set, got {', '.join(present)}"


def _is_at_most_one(group: list[Schema], names: list[str]) -> bool:
    """``oneOf: [{not: {anyOf: [{required: [a]}, ...]}}, {required: [a]}, ...]`` over the
    same names: exactly one branch holds iff at most one of the names is set."""
    first, rest = group[0], group[1:]
    if set(first) != {"not"} or not isinstance(first["not"], Mapping):
        return False
    negated = first["not"]
    if set(negated) != {"anyOf"} or not isinstance(negated["anyOf"], list):
        return False
    branches = [*negated["anyOf"], *rest]
    singles = [b.get("required") if isinstance(b, Mapping) else None for b in branches]
    if any(set(b) != {"required"} or not isinstance(r, list) or len(r) != 1
           for b, r in zip(branches, singles, strict=True)):  # fmt: skip
        return False
    negated_names = sorted(r[0] for r in singles[: len(negated["anyOf"])] if r)
    branch_names = sorted(r[0] for r in singles[len(negated["anyOf"]) :] if r)
    return negated_names == branch_names == names


Limits = tuple[float | None, float | None]


def _limit(schema: Schema, key: str) -> float | None:
    value = schema.get(key)
    return value if isinstance(value, int | float) else None


def _limits(schema: Schema, low: str, high: str) -> Limits | None:
    limits = (_limit(schema, low), _limit(schema, high))
    return None if limits == (None, None) else limits


def _bounds(value: float, limits: Limits, what: str, problems: list[str]) -> None:
    low, high = limits
    if low is not None and value < low:
        problems.append(f"{what} {value} is below the minimum {low}")
    if high is not None and value > high:
        problems.append(f"{what} {value} is above the maximum {high}")


class _AcceptAll:
    """Stands in for a pattern RE2 cannot compile: the schema's problem, not the user's."""

    def search(self, value: str) -> object:
        return value


def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error:
        return _AcceptAll()


class _Walk:
    """One pass over a spec. Leaf fields are checked in their parent's loop (a type test, and
    a path built only for a finding): most of a spec's values never cost a call or a string."""

    __slots__ = ("cel", "out", "structural", "unknown")

    def __init__(self, *, structural: bool, unknown: bool, cel: bool) -> None:
        self.structural = structural
        self.unknown = unknown
        self.cel = cel
        self.out: list[Finding] = []

    def value(self, value: Any, node: _Node, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, node.fast) and not node.accepts(value):
            if self.structural:
                self._mistyped(value, node, path)
            return
        if self.structural and node.constraints is not None:
            node.constraints.check(value, path, self.out)
        if self.cel:
            for check, message in node.rules:
                if not cel.satisfied(check, value):
                    self.out.append(error(path, message))
        if type(value) is dict or is_map(value):
            if node.properties is not None or node.extra is not None:
                self._object(value, node, path)
        elif node.items is not None and isinstance(value, list):
            items = node.items
            if items.leaf:
                if self.structural:
                    fast, accepts = items.fast, items.accepts
                    for index, element in enumerate(value):
                        if element is None or isinstance(element, fast) or accepts(element):
                            continue
                        self._mistyped(element, items, f"{path}[{index}]")
                return
            for index, element in enumerate(value):
                if element is not None:
                    self.value(element, items, f"{path}[{index}]")

    def _object(self, value: Mapping[str, Any], node: _Node, path: str) -> None:
        properties, extra, leaves = node.properties, node.extra, node.leaves
        structural = self.structural
        for key, child in value.items():
            leaf = leaves.get(key)
            if leaf is not None:
                if (
                    child is not None
                    and structural
                    and not isinstance(child, leaf.fast)
                    and not leaf.accepts(child)
                ):
                    self._mistyped(child, leaf, f"{path}.{key}" if path else str(key))
                continue
            known = properties.get(key) if properties is not None else None
            if known is not None:
                if child is not None:
                    self.value(child, known, f"{path}.{key}" if path else str(key))
            elif extra is not None:
                if child is None:
                    continue
                if extra.leaf:
                    if (
                        structural
                        and not isinstance(child, extra.fast)
                        and not extra.accepts(child)
                    ):
                        self._mistyped(child, extra, f"{path}[{key}]")
                    continue
                self.value(child, extra, f"{path}[{key}]")
            elif self.unknown and node.closed and properties is not None:
                message = f"{UNKNOWN_FIELD}{key!r}{_suggest(key, properties)}"
                self.out.append(warning(field(path, str(key)), message))

    def _mistyped(self, value: Any, node: _Node, path: str) -> None:
        self.out.append(error(path, f"expected {node.expected}, got {_json_type(value)}"))


# Not integer or number: a bool is an int to isinstance but not to the schema.
_CERTAIN_TYPES: dict[str, tuple[type, ...]] = {
    "": (object,),
    "string": (str,),
    "integer or string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _int_or_string(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _type_test(expected: str) -> Callable[[Any], bool]:
    """The test for a schema ``type``, chosen once per node instead of once per value."""
    if not expected:
        return _anything
    if expected == "integer":
        return _integer
    if expected == "number":
        return _number
    if expected == "string":
        return _string
    if expected == "object":
        return is_map
    if expected == "array":
        return _array
    if expected == "boolean":
        return _boolean
    return lambda value: _json_type(value) == expected


def _anything(value: Any) -> bool:
    return True


def _integer(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _array(value: Any) -> bool:
    return isinstance(value, list)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


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
    if is_map(value):
        return "object"
    return type(value).__name__


ObjectTest = Callable[[Mapping[str, Any]], bool]


def _satisfier(schema: Schema) -> ObjectTest:
    """Whether an object meets a constraint-only subschema (required / not / anyOf / oneOf /
    allOf), compiled to one closure; Istio's oneofs are mostly a single ``required`` name."""
    required = tuple(schema.get("required") or ())
    negated = schema.get("not")
    nested = (negated, schema.get("anyOf"), schema.get("oneOf"), schema.get("allOf"))
    if len(required) == 1 and not any(nested):
        name = required[0]
        return lambda value: value.get(name) is not None
    not_test = _satisfier(negated) if isinstance(negated, Mapping) else None
    any_of = tuple(_satisfier(s) for s in schema.get("anyOf") or ())
    one_of = tuple(_satisfier(s) for s in schema.get("oneOf") or ())
    all_of = tuple(_satisfier(s) for s in schema.get("allOf") or ())

    def test(value: Mapping[str, Any]) -> bool:
        if any(value.get(name) is None for name in required):
            return False
        if not_test is not None and not_test(value):
            return False
        if any_of and not any(t(value) for t in any_of):
            return False
        if one_of and sum(t(value) for t in one_of) != 1:
            return False
        return all(t(value) for t in all_of)

    return test


def _suggest(key: object, properties: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(key), list(properties), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check(resource: Resource, *, structural: bool, unknown: bool, cel: bool) -> list[Finding]:
    node = istio_crds().spec_node(resource.group, resource.kind, resource.version)
    if node is None:
        return []
    walk = _Walk(structural=structural, unknown=unknown, cel=cel)
    walk.value(resource.raw.get("spec"), node, "spec")
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
