"""The compiled rate-limit config: an immutable descriptor tree per domain, built once per load.

Building applies the reference's semantic checks (empty domain and key, duplicate composite
keys, units, ``unlimited``, ``replaces``, ``share_threshold``) and turns wildcard values into
matcher objects, so the request path only walks dictionaries and precompiled patterns.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from meshguard.common.findings import Finding, FindingsError, error, field
from meshguard.common.sources import SourceFile
from meshguard.ratelimit.configfile import DescriptorDoc, DomainDoc, parse_file


class Unit(enum.IntEnum):
    """Numbers of ``RateLimitResponse.RateLimit.Unit`` (WEEK came last, hence 7)."""

    UNKNOWN = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    MONTH = 5
    YEAR = 6
    WEEK = 7

    @property
    def seconds(self) -> int:
        return UNIT_SECONDS[self]


UNIT_SECONDS: Mapping[Unit, int] = MappingProxyType(
    {
        Unit.UNKNOWN: 0,
        Unit.SECOND: 1,
        Unit.MINUTE: 60,
        Unit.HOUR: 3600,
        Unit.DAY: 86400,
        Unit.WEEK: 604800,
        Unit.MONTH: 2592000,
        Unit.YEAR: 31536000,
    }
)

_STAT_UNSAFE = re.compile(r"[:|]")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def sanitize_stat(name: str) -> str:
    """Stat names as the reference emits them: ``:`` and ``|`` and IPv4 dots become ``_``."""
    name = _STAT_UNSAFE.sub("_", name)
    if "." in name:
        name = _IPV4.sub(lambda m: m.group(0).replace(".", "_"), name)
    return name


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """A limit as the service applies it (from the config tree or a request override)."""

    requests_per_unit: int
    unit: Unit
    stat_key: str = ""
    name: str = ""
    unlimited: bool = False
    shadow_mode: bool = False
    quota_mode: bool = False
    detailed_metric: bool = False
    replaces: frozenset[str] = frozenset()


class Wildcard:
    """A composite key with ``*`` in it; each ``*`` matches any run of characters."""

    __slots__ = ("_regex", "pattern", "prefix")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        head, star, rest = pattern.partition("*")
        self.prefix: str | None = head if star and rest == "" else None
        parts = (re.escape(p) for p in pattern.split("*"))
        self._regex = re.compile(".*".join(parts), re.DOTALL)

    def matches(self, composite: str) -> bool:
        if self.prefix is not None:
            return composite.startswith(self.prefix)
        return self._regex.fullmatch(composite) is not None

    def __repr__(self) -> str:
        return f"Wildcard({self.pattern!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """One config descriptor. ``children`` is keyed like the reference: ``key`` or ``key_value``."""

    composite: str
    limit: RateLimit | None
    children: Mapping[str, Node]
    wildcards: tuple[tuple[Wildcard, Node], ...]
    value_to_metric: bool = False
    share_threshold: bool = False
    metadata: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Domain:
    name: str
    root: Node


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """The active config snapshot: every domain, compiled."""

    domains: Mapping[str, Domain]

    def dump(self) -> str:
        """One line per limit (full key, unit, requests_per_unit, flags), like ``/rlconfig``."""
        lines: list[str] = []
        for name in sorted(self.domains):
            _dump(self.domains[name].root, name + ".", lines)
        return "\n".join(lines) + ("\n" if lines else "")


def _dump(node: Node, prefix: str, lines: list[str]) -> None:
    for composite, child in node.children.items():
        key = prefix + composite
        limit = child.limit
        if limit is not None:
            if limit.unlimited:
                text = "unlimited"
            else:
                text = f"unit={limit.unit.name} requests_per_unit={limit.requests_per_unit}"
            flags = [
                flag
                for flag, on in (
                    ("shadow_mode", limit.shadow_mode),
                    ("quota_mode", limit.quota_mode),
                )
                if on
            ]
            extra = "".join(f", {f}=true" for f in flags)
            name = f", name={limit.name}" if limit.name else ""
            lines.append(f"{key}: {text}{name}{extra}")
        _dump(child, key + ".", lines)


@dataclasses.dataclass(frozen=True, slots=True)
class CompileOptions:
    merge_domains: bool = False


def compile_sources(
    files: Sequence[SourceFile], options: CompileOptions = CompileOptions()
) -> RateLimitConfig:
    """Parse and build every file; any error anywhere rejects the whole set (FindingsError)."""
    docs: list[DomainDoc] = []
    problems: list[Finding] = []
    for source in files:
        try:
            docs.extend(parse_file(source.text, source.path))
        except FindingsError as exc:
            problems.extend(exc.findings)
    if problems:
        raise FindingsError(problems)
    return build(docs, options)


def build(docs: Iterable[DomainDoc], options: CompileOptions = CompileOptions()) -> RateLimitConfig:
    builders: dict[str, _Level] = {}
    problems: list[Finding] = []
    for doc in docs:

        def report(path: str, message: str, doc: DomainDoc = doc) -> None:
            problems.append(error(path, message).located(doc.source, None))

        if doc.domain == "":
            report(field(doc.path, "domain"), "config file cannot have empty domain")
            continue
        level = builders.get(doc.domain)
        if level is not None and not options.merge_domains:
            report(field(doc.path, "domain"), f"duplicate domain '{doc.domain}' in config file")
            continue
        if level is None:
            level = builders[doc.domain] = _Level()
        level.add(doc.descriptors, doc.domain + ".", report)
    if problems:
        raise FindingsError(problems)
    domains = {
        name: Domain(name, level.freeze("", None, False, False, None))
        for name, level in builders.items()
    }
    return RateLimitConfig(MappingProxyType(domains))


class _Level:
    """Mutable siblings while building; frozen into :class:`Node` objects at the end."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[DescriptorDoc, RateLimit | None, _Level]] = {}
        self.wildcards: list[str] = []

    def add(self, descriptors: Iterable[DescriptorDoc], parent_key: str, report: Any) -> None:
        for doc in descriptors:
            if doc.key == "":
                report(field(doc.path, "key"), "descriptor has empty key")
                continue
            composite = doc.key if doc.value == "" else f"{doc.key}_{doc.value}"
            full_key = parent_key + composite
            if composite in self.children:
                report(doc.path, f"duplicate descriptor composite key '{full_key}'")
                continue
            limit = _limit(doc, full_key, report)
            if doc.share_threshold and "*" not in composite:
                report(
                    field(doc.path, "share_threshold"),
                    "share_threshold can only be used with wildcard values, "
                    f"but found key_value: '{composite}'",
                )
            child = _Level()
            child.add(doc.descriptors, full_key + ".", report)
            self.children[composite] = (doc, limit, child)
            if "*" in composite:
                self.wildcards.append(composite)

    def freeze(
        self,
        composite: str,
        limit: RateLimit | None,
        value_to_metric: bool,
        share_threshold: bool,
        metadata: Mapping[str, Any] | None,
    ) -> Node:
        children = {
            key: level.freeze(key, lim, doc.value_to_metric, doc.share_threshold, doc.metadata)
            for key, (doc, lim, level) in self.children.items()
        }
        wildcards = tuple((Wildcard(key), children[key]) for key in self.wildcards)
        return Node(
            composite,
            limit,
            MappingProxyType(children),
            wildcards,
            value_to_metric,
            share_threshold,
            metadata,
        )


def _limit(doc: DescriptorDoc, full_key: str, report: Any) -> RateLimit | None:
    spec = doc.rate_limit
    if spec is None:
        return None
    unit = Unit.__members__.get(spec.unit.upper(), Unit.UNKNOWN)
    valid_unit = unit is not Unit.UNKNOWN
    if spec.unlimited:
        if valid_unit:
            report(field(spec.path, "unit"), "should not specify rate limit unit when unlimited")
    elif not valid_unit:
        report(field(spec.path, "unit"), f"invalid rate limit unit '{spec.unit}'")
    for name in spec.replaces:
        if name == "":
            report(field(spec.path, "replaces"), "should not have an empty replaces entry")
        elif name == spec.name:
            report(
                field(spec.path, "replaces"), "replaces should not contain name of same descriptor"
            )
    return RateLimit(
        requests_per_unit=spec.requests_per_unit,
        unit=unit,
        stat_key=sanitize_stat(full_key),
        name=spec.name,
        unlimited=spec.unlimited,
        shadow_mode=doc.shadow_mode,
        quota_mode=doc.quota_mode,
        detailed_metric=doc.detailed_metric,
        replaces=frozenset(spec.replaces),
    )
