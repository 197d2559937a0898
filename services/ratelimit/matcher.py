"""Find the limit for one request descriptor in the compiled tree, the reference's way.

Per entry: the child stored under ``key_value``, else the first wildcard of that level (file
order) matching ``key_value``, else the child stored under ``key``. Only a node reached on the
last entry gives a limit. The joined ``key_value`` strings are what the reference looks up, so
its underscore collisions are reproduced on purpose (conformance scenario 21).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshguard.ratelimit.config import Domain, Node, RateLimit, Unit, sanitize_stat
from meshguard.ratelimit.model import Descriptor, LimitOverride, RequestError


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """The limits that apply to one descriptor, with the names their counters and stats use.

    Reference configs give exactly one limit; ``rate_limits`` gives several, checked together.
    """

    limits: tuple[RateLimit, ...]
    counter_name: str  # "key_value_" per entry; the domain prefix and window start are added later
    stat_keys: tuple[str, ...]  # one per limit
    metadata: Mapping[str, Any] | None = None

    @property
    def limit(self) -> RateLimit:
        return self.limits[0]


def counter_name(entries: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"{key}_{value}_" for key, value in entries)


def match(domain: Domain, descriptor: Descriptor) -> Match | None:
    """The limit for ``descriptor`` in ``domain`` (overrides win), or None."""
    entries = descriptor.entries
    if descriptor.limit is not None:
        return _override(domain.name, entries, descriptor.limit)
    node = domain.root
    path: list[Node] = []
    found: Node | None = None
    last = len(entries) - 1
    for index, (key, value) in enumerate(entries):
        composite = f"{key}_{value}"
        child = node.children.get(composite)
        if child is None:
            for wildcard, candidate in node.wildcards:
                if wildcard.matches(composite):
                    child = candidate
                    break
            if child is None:
                child = node.children.get(key)
        if child is None:
            return None
        path.append(child)
        if index == last and child.limits:
            found = child
        if not child.children:
            break
        node = child
    if found is None:
        return None
    return _tree_match(domain.name, entries, path, found.limits, found.metadata)


def _tree_match(
    domain: str,
    entries: tuple[tuple[str, str], ...],
    path: list[Node],
    limits: tuple[RateLimit, ...],
    metadata: Mapping[str, Any] | None,
) -> Match:
    limit = limits[0]
    names: list[str] = []
    stat_segments: list[str] | None = None
    for node, (key, value) in zip(path, entries, strict=True):
        request_composite = f"{key}_{value}"
        shared = node.share_threshold and node.composite != request_composite
        names.append((node.composite if shared else request_composite) + "_")
        if limit.detailed_metric or (node.value_to_metric and not node.share_threshold):
            if stat_segments is None:
                stat_segments = [n.composite for n in path]
            stat_segments[len(names) - 1] = request_composite
    if limit.detailed_metric and stat_segments is not None:
        stat_segments = [f"{k}_{v}" for k, v in entries]
    if stat_segments is None:
        stat_keys = tuple(lim.stat_key for lim in limits)
    else:
        base = sanitize_stat(domain + "." + ".".join(stat_segments))
        stat_keys = tuple(base + lim.stat_suffix for lim in limits)
    return Match(limits, "".join(names), stat_keys, metadata)


def _override(domain: str, entries: tuple[tuple[str, str], ...], override: LimitOverride) -> Match:
    if override.unit <= Unit.UNKNOWN or override.unit > max(Unit):
        raise RequestError(f"rate limit override has an invalid unit ({override.unit})")
    segments = [key if value == "" else f"{key}_{value}" for key, value in entries]
    stat_key = sanitize_stat(domain + "." + ".".join(segments))
    limit = RateLimit(override.requests_per_unit, Unit(override.unit), stat_key=stat_key)
    return Match((limit,), counter_name(entries), (stat_key,))
