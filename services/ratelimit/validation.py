"""Validator for ``RateLimitConfig`` resources (``meshguard.io``), used by the webhook and CLI.

The spec is one envoyproxy/ratelimit domain document. It arrives already decoded, so it is
re-serialised and run through the same two-pass reader and tree builder as config files, which
keeps one set of rules and messages for both.
"""

from __future__ import annotations

import yaml

from meshguard.common.findings import Finding, FindingsError
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
    return []


VALIDATORS: dict[tuple[str, str], Validator] = {
    (configfile.API_GROUP, configfile.KIND): validate_rate_limit_config,
}
