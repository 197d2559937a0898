"""One config file read the way envoyproxy/ratelimit reads it, into typed, still unvalidated docs.

The reference checks a file in two passes and we keep both, with its messages:

1. the generic tree: every mapping key is a string from one flat allow-list (at any depth, so a
   known name in the wrong place passes), every list holds mappings, every scalar is a string,
   int, bool or null (content under ``metadata`` is not checked);
2. a typed decode: known fields are read where they belong, others are ignored; string fields
   take the scalar's literal text; a scalar that does not fit its field is an unmarshal error.

A file can also be a Kubernetes-style ``RateLimitConfig`` whose ``spec`` is one domain document.
Semantic checks (units, duplicates, replaces) happen when the tree is built, in :mod:`config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml

from meshguard.common.findings import Finding, FindingsError, error, field, item
from meshguard.ratelimit import yamlgo

API_GROUP = "meshguard.io"
KIND = "RateLimitConfig"

VALID_KEYS = frozenset(
    [
        "domain",
        "key",
        "value",
        "descriptors",
        "rate_limit",
        "unit",
        "requests_per_unit",
        "unlimited",
        "shadow_mode",
        "quota_mode",
        "name",
        "replaces",
        "detailed_metric",
        "value_to_metric",
        "share_threshold",
        "metadata",
        # meshguard's opt-in extensions (the reference rejects these names as unknown keys)
        "rate_limits",
        "unit_multiplier",
        "algorithm",
    ]
)
UINT32_MAX = 2**32 - 1
_MAX_DEPTH = 64


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitDoc:
    """A ``rate_limit`` block as written (``unit`` is not checked yet)."""

    requests_per_unit: int
    unit: str
    unlimited: bool
    name: str
    replaces: tuple[str, ...]
    path: str
    unit_multiplier: int | None = None  # extension; None when not written
    algorithm: str | None = None  # extension; None when not written


@dataclasses.dataclass(frozen=True, slots=True)
class DescriptorDoc:
    key: str
    value: str
    rate_limit: RateLimitDoc | None
    rate_limits: tuple[RateLimitDoc, ...] | None
    descriptors: tuple[DescriptorDoc, ...]
    shadow_mode: bool
    quota_mode: bool
    detailed_metric: bool
    value_to_metric: bool
    share_threshold: bool
    metadata: Mapping[str, Any] | None
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class DomainDoc:
    """One domain as read from one file (or one RateLimitConfig resource)."""

    source: str
    domain: str
    descriptors: tuple[DescriptorDoc, ...]
    path: str = ""


def parse_file(text: str, source: str) -> list[DomainDoc]:
    """The domain documents of one file; raises FindingsError with the reference's messages."""
    try:
        nodes = yamlgo.compose_all(text)
    except yaml.YAMLError as exc:
        raise FindingsError([_syntax_finding(exc, source)]) from exc
    except (RecursionError, ValueError) as exc:
        raise FindingsError(
            [error("", f"error loading config file: yaml: {exc}").located(source, 0)]
        ) from exc
    if nodes and _is_resource(nodes[0]):
        return _parse_resources(nodes, source)
    return [_parse_domain(nodes[0] if nodes else None, source, "", 0)]


def parse_spec(spec_node: yaml.Node | None, source: str, path: str, doc: int) -> DomainDoc:
    """A RateLimitConfig's ``spec`` (already composed) as one domain document."""
    return _parse_domain(spec_node, source, path, doc)


def _syntax_finding(exc: yaml.YAMLError, source: str) -> Finding:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return error("", f"error loading config file: yaml: {where}{problem}").located(source, 0)


def _is_resource(node: yaml.Node) -> bool:
    if not isinstance(node, yaml.MappingNode):
        return False
    names = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return {"apiVersion", "kind"} <= names


def _parse_resources(nodes: list[yaml.Node], source: str) -> list[DomainDoc]:
    docs: list[DomainDoc] = []
    problems: list[Finding] = []
    for index, node in enumerate(nodes):
        fields = _scalar_fields(node)
        api_version, kind = fields.get("apiVersion", ""), fields.get("kind", "")
        if kind != KIND or api_version.rpartition("/")[0] != API_GROUP:
            problems.append(
                error(
                    "kind",
                    f"expected apiVersion {API_GROUP}/v1alpha1 and kind {KIND}, "
                    f"got {api_version} {kind}",
                ).located(source, index)
            )
            continue
        spec = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "spec"),
            None,
        )
        try:
            docs.append(_parse_domain(spec, source, "spec", index))
        except FindingsError as exc:
            problems.extend(exc.findings)
    if problems:
        raise FindingsError(problems)
    return docs


def _scalar_fields(node: yaml.Node) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(k.value): str(v.value)
        for k, v in node.value
        if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)
    }


def _parse_domain(node: yaml.Node | None, source: str, path: str, doc: int) -> DomainDoc:
    def located(findings: list[Finding]) -> FindingsError:
        return FindingsError([f.located(source, doc) for f in findings])

    if node is not None:
        _flatten_merges(node, 0)
    if node is not None and not isinstance(node, yaml.MappingNode):
        if not (isinstance(node, yaml.ScalarNode) and node.tag == yamlgo.NULL):
            raise located([error(path, _unmarshal(node, "map[interface {}]interface {}"))])
        node = None
    problems: list[Finding] = []
    if node is not None:
        _check_keys(node, path, problems, 0)
    if problems:
        raise located(problems)
    decoder = _Decoder()
    domain = ""
    descriptors: tuple[DescriptorDoc, ...] = ()
    if node is not None:
        for key, value in _pairs(node):
            if key == "domain":
                domain = decoder.string(value, field(path, key))
            elif key == "descriptors":
                descriptors = decoder.descriptors(value, field(path, key))
    if decoder.failed():
        raise located(decoder.findings())
    return DomainDoc(source, domain, descriptors, path)


def _flatten_merges(node: yaml.Node, depth: int) -> None:
    """Apply ``<<`` merge keys in place, as yaml.v2 does while decoding."""
    if depth > _MAX_DEPTH:
        raise FindingsError([error("", "error loading config file: yaml: nesting too deep")])
    if isinstance(node, yaml.MappingNode):
        if any(k.tag == yamlgo.MERGE for k, _ in node.value):
            yaml.SafeLoader("").flatten_mapping(node)
        for _, value in node.value:
            _flatten_merges(value, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _flatten_merges(child, depth + 1)


def _check_keys(node: yaml.MappingNode, path: str, out: list[Finding], depth: int) -> None:
    """Pass 1: names from the allow-list, lists of mappings, simple scalars only."""
    for key_node, value in node.value:
        if not _is_string(key_node):
            out.append(
                error(
                    path, f"config error, key is not of type string: {yamlgo.go_format(key_node)}"
                )
            )
            continue
        name = str(key_node.value)
        here = field(path, name)
        if name not in VALID_KEYS:
            out.append(error(here, f"config error, unknown key '{name}'"))
            continue
        if name == "metadata":
            continue
        if isinstance(value, yaml.SequenceNode):
            for index, element in enumerate(value.value):
                if not isinstance(element, yaml.MappingNode):
                    out.append(
                        error(
                            item(here, index),
                            "config error, yaml file contains list of type other than map: "
                            + yamlgo.go_format(element),
                        )
                    )
                    continue
                _check_keys(element, item(here, index), out, depth + 1)
        elif isinstance(value, yaml.MappingNode):
            _check_keys(value, here, out, depth + 1)
        elif not _is_simple_scalar(value):
            out.append(error(here, "error checking config"))


def _is_string(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag in (yamlgo.STR, yamlgo.TIMESTAMP)


def _is_simple_scalar(node: yaml.Node) -> bool:
    if not isinstance(node, yaml.ScalarNode):
        return False
    if node.tag == yamlgo.INT:
        return yamlgo.int_value(str(node.value)) <= yamlgo.INT64_MAX
    return node.tag in (yamlgo.STR, yamlgo.TIMESTAMP, yamlgo.BOOL, yamlgo.NULL)


def _pairs(node: yaml.MappingNode) -> list[tuple[str, yaml.Node]]:
    return [(str(k.value), v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _short_tag(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _unmarshal(node: yaml.Node, go_type: str) -> str:
    """yaml.v2's type error text for one node."""
    tag = _short_tag(node.tag)
    shown = ""
    if isinstance(node, yaml.ScalarNode):
        text = str(node.value)
        shown = f" `{text[:7]}...`" if len(text) > 10 else f" `{text}`"
    return f"line {node.start_mark.line + 1}: cannot unmarshal {tag}{shown} into {go_type}"


class _Decoder:
    """Pass 2: typed decode that collects yaml.v2-style unmarshal errors and keeps going."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.other: list[Finding] = []

    def failed(self) -> bool:
        return bool(self.errors or self.other)

    def findings(self) -> list[Finding]:
        found = list(self.other)
        if self.errors:
            detail = "\n  ".join(text for _, text in self.errors)
            message = f"error loading config file: yaml: unmarshal errors:\n  {detail}"
            found.insert(0, error(self.errors[0][0], message))
        return found

    def _fail(self, node: yaml.Node, path: str, go_type: str) -> None:
        self.errors.append((path, _unmarshal(node, go_type)))

    def string(self, node: yaml.Node, path: str) -> str:
        if isinstance(node, yaml.ScalarNode):
            return "" if node.tag == yamlgo.NULL else str(node.value)
        self._fail(node, path, "string")
        return ""

    def boolean(self, node: yaml.Node, path: str) -> bool:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == yamlgo.NULL:
                return False
            if node.tag == yamlgo.BOOL:
                return str(node.value) in yamlgo.TRUE_WORDS
        self._fail(node, path, "bool")
        return False

    def uint32(self, node: yaml.Node, path: str) -> int:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == yamlgo.NULL:
                return 0
            if node.tag == yamlgo.INT:
                value = yamlgo.int_value(str(node.value))
                if 0 <= value <= UINT32_MAX:
                    return value
        self._fail(node, path, "uint32")
        return 0

    def _sequence(self, node: yaml.Node, path: str, go_type: str) -> list[yaml.Node]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if not (isinstance(node, yaml.ScalarNode) and node.tag == yamlgo.NULL):
            self._fail(node, path, go_type)
        return []

    def _mapping(self, node: yaml.Node, path: str, go_type: str) -> yaml.MappingNode | None:
        if isinstance(node, yaml.MappingNode):
            return node
        if not (isinstance(node, yaml.ScalarNode) and node.tag == yamlgo.NULL):
            self._fail(node, path, go_type)
        return None

    def descriptors(self, node: yaml.Node, path: str) -> tuple[DescriptorDoc, ...]:
        out: list[DescriptorDoc] = []
        for index, child in enumerate(self._sequence(node, path, "[]config.YamlDescriptor")):
            mapping = self._mapping(child, item(path, index), "config.YamlDescriptor")
            out.append(self.descriptor(mapping, item(path, index)))
        return tuple(out)

    def descriptor(self, node: yaml.MappingNode | None, path: str) -> DescriptorDoc:
        values: dict[str, Any] = {
            "key": "",
            "value": "",
            "rate_limit": None,
            "rate_limits": None,
            "descriptors": (),
            "shadow_mode": False,
            "quota_mode": False,
            "detailed_metric": False,
            "value_to_metric": False,
            "share_threshold": False,
            "metadata": None,
        }
        for key, value in _pairs(node) if node is not None else []:
            here = field(path, key)
            if key in ("key", "value"):
                values[key] = self.string(value, here)
            elif key == "rate_limit":
                values[key] = self.rate_limit(value, here)
            elif key == "rate_limits":
                values[key] = self.rate_limits(value, here)
            elif key == "descriptors":
                values[key] = self.descriptors(value, here)
            elif key in (
                "shadow_mode",
                "quota_mode",
                "detailed_metric",
                "value_to_metric",
                "share_threshold",
            ):
                values[key] = self.boolean(value, here)
            elif key == "metadata":
                values[key] = self.metadata(value, here)
        return DescriptorDoc(path=path, **values)

    def rate_limit(self, node: yaml.Node, path: str) -> RateLimitDoc | None:
        mapping = self._mapping(node, path, "config.YamlRateLimit")
        if mapping is None:
            return None
        requests, unit, unlimited, name = 0, "", False, ""
        replaces: list[str] = []
        multiplier: int | None = None
        algorithm: str | None = None
        for key, value in _pairs(mapping):
            here = field(path, key)
            if key == "requests_per_unit":
                requests = self.uint32(value, here)
            elif key == "unit":
                unit = self.string(value, here)
            elif key == "unlimited":
                unlimited = self.boolean(value, here)
            elif key == "name":
                name = self.string(value, here)
            elif key == "replaces":
                replaces = self.replaces(value, here)
            elif key == "unit_multiplier":
                multiplier = self.uint32(value, here)
            elif key == "algorithm":
                algorithm = self.string(value, here)
        return RateLimitDoc(
            requests, unit, unlimited, name, tuple(replaces), path, multiplier, algorithm
        )

    def rate_limits(self, node: yaml.Node, path: str) -> tuple[RateLimitDoc, ...]:
        out: list[RateLimitDoc] = []
        for index, child in enumerate(self._sequence(node, path, "[]config.YamlRateLimit")):
            limit = self.rate_limit(child, item(path, index))
            if limit is not None:
                out.append(limit)
        return tuple(out)

    def replaces(self, node: yaml.Node, path: str) -> list[str]:
        names: list[str] = []
        for index, child in enumerate(self._sequence(node, path, "[]config.YamlReplaces")):
            mapping = self._mapping(child, item(path, index), "config.YamlReplaces")
            name = ""
            for key, value in _pairs(mapping) if mapping is not None else []:
                if key == "name":
                    name = self.string(value, field(item(path, index), key))
            names.append(name)
        return names

    def metadata(self, node: yaml.Node, path: str) -> Mapping[str, Any] | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == yamlgo.NULL:
            return None
        if not isinstance(node, yaml.MappingNode):
            self._fail(node, path, "map[string]interface {}")
            return None
        try:
            value: dict[str, Any] = _plain_value(node, 0)
        except MetadataError as exc:
            self.other.append(error(path, f"error parsing metadata: {exc}"))
            return None
        return value


class MetadataError(ValueError):
    """Metadata that a protobuf Struct cannot hold (non-string keys, too deep)."""


def _plain_value(node: yaml.Node, depth: int) -> Any:
    """Metadata content as JSON-like Python values (what a protobuf Struct can carry)."""
    if depth > _MAX_DEPTH:
        raise MetadataError("nesting too deep")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key, value in node.value:
            if not _is_string(key):
                raise MetadataError(f"invalid key type {_short_tag(key.tag)}")
            out[str(key.value)] = _plain_value(value, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain_value(child, depth + 1) for child in node.value]
    text = str(node.value)
    if node.tag == yamlgo.NULL:
        return None
    if node.tag == yamlgo.BOOL:
        return text in yamlgo.TRUE_WORDS
    if node.tag == yamlgo.INT:
        return yamlgo.int_value(text)
    if node.tag == yamlgo.FLOAT:
        return float(text.replace("_", "").lower().replace(".inf", "inf").replace(".nan", "nan"))
    return text
