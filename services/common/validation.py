"""The validator registry: one function per (API group, kind), shared by every entry point.

The webhook, the service loaders and ``meshguard validate`` / ``analyze`` all ask the same
registry, so a resource is judged the same way wherever it is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from meshguard.common.findings import Finding, warning
from meshguard.common.resources import Resource

Validator = Callable[[Resource], list[Finding]]
KindKey = tuple[str, str]  # (API group, kind)


class ValidatorRegistry:
    """Maps (group, kind) to the validator for that kind."""

    def __init__(self, validators: Mapping[KindKey, Validator] | None = None) -> None:
        self._validators: dict[KindKey, Validator] = dict(validators or {})

    def register(self, group: str, kind: str, validator: Validator) -> None:
        key = (group, kind)
        if key in self._validators:
            raise ValueError(f"a validator for {kind} ({group or 'core'}) is already registered")
        self._validators[key] = validator

    def register_all(self, validators: Mapping[KindKey, Validator]) -> None:
        for (group, kind), validator in validators.items():
            self.register(group, kind, validator)

    def knows(self, resource: Resource) -> bool:
        return (resource.group, resource.kind) in self._validators

    def kinds(self) -> list[KindKey]:
        return sorted(self._validators)

    def validate(self, resource: Resource) -> list[Finding]:
        """Findings for one resource, located at its origin; unknown kinds get one warning."""
        validator = self._validators.get((resource.group, resource.kind))
        if validator is None:
            found = [
                warning(
                    "kind",
                    f"no validator for {resource.kind} ({resource.api_version}); not checked",
                )
            ]
        else:
            found = validator(resource)
        return [resource.locate(f) for f in found]

    def validate_all(self, resources: Iterable[Resource]) -> list[Finding]:
        return [f for r in resources for f in self.validate(r)]
