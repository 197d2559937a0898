"""Assembles the validator registry from every service's validators.

Each service exposes ``VALIDATORS: Mapping[(group, kind), Validator]``; this is the one place
that lists them, so the webhook, the loaders and the CLI judge resources the same way.
"""

from __future__ import annotations

from meshguard.authz import validation as authz_validation
from meshguard.common.validation import ValidatorRegistry
from meshguard.ratelimit import validation as ratelimit_validation
from meshguard.webhook import validation as webhook_validation


def default_registry() -> ValidatorRegistry:
    registry = ValidatorRegistry()
    # Each service adds one line here: registry.register_all(<service>.validation.VALIDATORS)
    registry.register_all(authz_validation.VALIDATORS)
    registry.register_all(ratelimit_validation.VALIDATORS)
    registry.register_all(webhook_validation.VALIDATORS)
    return registry
