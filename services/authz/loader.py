"""Policy files → validated, compiled :class:`PolicySet` (the config store's compile step).

Only AuthorizationPolicy and RequestAuthentication resources are read; other kinds in the same
files are left to the services that own them. Any validation error rejects the whole set, so
the store keeps serving the last good one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from meshguard.authz import model, validation
from meshguard.authz.compiler import EngineOptions
from meshguard.authz.engine import PolicySet
from meshguard.common.findings import Finding, FindingsError, has_errors
from meshguard.common.resources import Resource, load_sources
from meshguard.common.sources import SourceFile


def build(
    resources: Iterable[Resource], options: EngineOptions, *, strict: bool = True
) -> PolicySet:
    """Compile the authz resources among ``resources``; ``strict`` validates them first."""
    policies = []
    authentications = []
    findings: list[Finding] = []
    for resource in resources:
        if resource.group not in model.GROUPS:
            continue
        validator = validation.VALIDATORS.get((resource.group, resource.kind))
        if validator is None:
            continue
        if strict:
            findings.extend(resource.locate(f) for f in validator(resource))
        if resource.kind == model.AUTHORIZATION_POLICY:
            policies.append(model.parse_authorization_policy(resource))
        else:
            authentications.append(model.parse_request_authentication(resource))
    if has_errors(findings):
        raise FindingsError([f for f in findings if f.is_error])
    return PolicySet(policies, authentications, options)


def compiler(options: EngineOptions) -> Callable[[list[SourceFile]], PolicySet]:
    """The ``compile`` callable a ConfigStore needs."""
    return lambda files: build(load_sources(files), options)
