"""Validator for ``RateLimitConfig`` resources (``meshguard.io``), used by the webhook and CLI.

The spec is one envoyproxy/ratelimit domain document. It arrives already decoded, so it is
re-serialised and run through the same two-pass reader and tree builder as config files, which
keeps one set of rules and messages for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from meshguard.common.findings import Finding, FindingsError, field, item, warning
from meshguard.common.resources import Resource
from meshguard.common.validation import Validator
from meshguard.ratelimit import configfile, yamlgo
from meshguard.ratelimit.config import build


def validate_rate_limit_config(resource: Resource) -> list[Finding]:
    text = yaml.safe_dump(dict(resource.spec), sort_keys=False)
    source = resource.origin.file if resource.origin is not None else resource.ref
    try:
        node = yamlgo.compose_first(text)
        doc = configfile.parse_spec(node, source, "spec", 0)
        build([doc])
    except FindingsError as exc:
        return [f.located(None, None) for f in exc.findings]
    return list(_advisories(resource.spec.get("descriptors"), "spec.descriptors"))


def _advisories(descriptors: Any, path: str) -> Iterator[Finding]:
    """What loads but is probably a mistake: warnings, as the webhook reference asks."""
    if not isinstance(descriptors, list):
        return
    for index, node in enumerate(descriptors):
        if not isinstance(node, Mapping):
            continue
        here = item(path, index)
        if node.get("shadow_mode") is True:
            yield warning(
                field(here, "shadow_mode"),
                "shadow mode is on: requests over this limit are counted but never denied",
            )
        # A leaf without a limit is no mistake: it exempts its value from a key-only default.
        yield from _advisories(node.get("descriptors"), field(here, "descriptors"))


VALIDATORS: dict[tuple[str, str], Validator] = {
    (configfile.API_GROUP, configfile.KIND): validate_rate_limit_config,
}
