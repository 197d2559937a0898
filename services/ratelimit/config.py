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
from meshguard.ratelimit.algorithms import Algorithm
from meshguard.ratelimit.configfile import DescriptorDoc, DomainDoc, RateLimitDoc, parse_file


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
    # Extensions (opt-in; the defaults are the reference's fixed window and key layout):
    unit_multiplier: int = 1
    algorithm: Algorithm = Algorithm.FIXED_WINDOW
    key_tag: str = ""  # "" keeps the reference's counter name; see :func:`key_tag`
    stat_suffix: str = ""  # ".<label>" when a descriptor has several limits

    @property
    def window(self) -> int:
        """Window length in seconds (unit length times ``unit_multiplier``)."""
        return self.unit.seconds * self.unit_multiplier


def key_tag(algorithm: Algorithm, window: int, reference_layout: bool) -> str:
    """What tells this limit's counter apart from the reference's ``<entries><window start>``.

    Fixed windows append ``_<window>s`` after the window start unless they are the reference's
    layout (first limit, multiplier 1); the scripted algorithms keep one key per descriptor and
    window (``sliding_60s``, ``gcra_60s``) instead of one per window start.
    """
    if algorithm is Algorithm.FIXED_WINDOW:
        return "" if reference_layout else f"_{window}s"
    return f"{algorithm.value.split('_')[0]}_{window}s"


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
    limits: tuple[RateLimit, ...]
    children: Mapping[str, Node]
    wildcards: tuple[tuple[Wildcard, Node], ...]
    value_to_metric: bool = False
    share_threshold: bool = False
    metadata: Mapping[str, Any] | None = None

    @property
    def limit(self) -> RateLimit | None:
        """The first (for reference configs: the only) limit of this node."""
        return self.limits[0] if self.limits else None


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
        for limit in child.limits:
            if limit.unlimited:
                text = "unlimited"
            else:
                text = f"unit={limit.unit.name} requests_per_unit={limit.requests_per_unit}"
                if limit.unit_multiplier != 1:
                    text += f" unit_multiplier={limit.unit_multiplier}"
                if limit.algorithm is not Algorithm.FIXED_WINDOW:
                    text += f" algorithm={limit.algorithm.value}"
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
        name: Domain(name, level.freeze("", (), False, False, None))
        for name, level in builders.items()
    }
    return RateLimitConfig(MappingProxyType(domains))


class _Level:
    """Mutable siblings while building; frozen into :class:`Node` objects at the end."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[DescriptorDoc, tuple[RateLimit, ...], _Level]] = {}
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
            limits = _limits(doc, full_key, report)
            if doc.share_threshold and "*" not in composite:
                report(
                    field(doc.path, "share_threshold"),
                    "share_threshold can only be used with wildcard values, "
                    f"but found key_value: '{composite}'",
                )
            child = _Level()
            child.add(doc.descriptors, full_key + ".", report)
            self.children[composite] = (doc, limits, child)
            if "*" in composite:
                self.wildcards.append(composite)

    def freeze(
        self,
        composite: str,
        limits: tuple[RateLimit, ...],
        value_to_metric: bool,
        share_threshold: bool,
        metadata: Mapping[str, Any] | None,
    ) -> Node:
        children = {
            key: level.freeze(key, lims, doc.value_to_metric, doc.share_threshold, doc.metadata)
            for key, (doc, lims, level) in self.children.items()
        }
        wildcards = tuple((Wildcard(key), children[key]) for key in self.wildcards)
        return Node(
            composite,
            limits,
            MappingProxyType(children),
            wildcards,
            value_to_metric,
            share_threshold,
            metadata,
        )


def _limits(doc: DescriptorDoc, full_key: str, report: Any) -> tuple[RateLimit, ...]:
    """The limits of one descriptor: its ``rate_limit``, or each entry of ``rate_limits``."""
    if doc.rate_limits is None:
        return () if doc.rate_limit is None else (_limit(doc, doc.rate_limit, full_key, 0, report),)
    if doc.rate_limit is not None:
        report(field(doc.path, "rate_limits"), "use either rate_limit or rate_limits, not both")
    specs = doc.rate_limits
    several = len(specs) > 1
    limits = tuple(_limit(doc, spec, full_key, i, report, several) for i, spec in enumerate(specs))
    if several and any(limit.unlimited for limit in limits):
        report(
            field(doc.path, "rate_limits"),
            "an unlimited limit cannot be combined with other limits",
        )
    seen: dict[str, str] = {}
    for spec, limit in zip(specs, limits, strict=True):
        for what, value in (
            ("algorithm and window", f"{limit.algorithm.value}, {limit.window}s"),
            ("stat name", limit.stat_suffix),
        ):
            if value and seen.setdefault(what + value, spec.path) != spec.path:
                report(spec.path, f"two limits of this descriptor have the same {what} ({value})")
                break
    return limits


_ALGORITHMS = {a.value: a for a in Algorithm}


def _limit(
    doc: DescriptorDoc,
    spec: RateLimitDoc,
    full_key: str,
    index: int,
    report: Any,
    several: bool = False,
) -> RateLimit:
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
    multiplier = 1 if spec.unit_multiplier is None else spec.unit_multiplier
    if multiplier < 1:
        report(field(spec.path, "unit_multiplier"), "unit_multiplier must be at least 1")
        multiplier = 1
    algorithm = Algorithm.FIXED_WINDOW
    if spec.algorithm is not None:
        found = _ALGORITHMS.get(spec.algorithm)
        if found is None:
            expected = ", ".join(sorted(_ALGORITHMS))
            report(
                field(spec.path, "algorithm"),
                f"unknown algorithm '{spec.algorithm}' (expected one of {expected})",
            )
        else:
            algorithm = found
    window = unit.seconds * multiplier
    suffix = ""
    if several:
        label = spec.name or f"{algorithm.value}_{window}s"
        suffix = "." + sanitize_stat(label.replace(".", "_"))
    reference_layout = index == 0 and multiplier == 1
    return RateLimit(
        requests_per_unit=spec.requests_per_unit,
        unit=unit,
        stat_key=sanitize_stat(full_key) + suffix,
        name=spec.name,
        unlimited=spec.unlimited,
        shadow_mode=doc.shadow_mode,
        quota_mode=doc.quota_mode,
        detailed_metric=doc.detailed_metric,
        replaces=frozenset(spec.replaces),
        unit_multiplier=multiplier,
        algorithm=algorithm,
        key_tag=key_tag(algorithm, window, reference_layout),
        stat_suffix=suffix,
    )
