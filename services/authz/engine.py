"""Which policies apply to a workload, and Istio's decision over them.

A :class:`PolicySet` is the immutable compiled form of one config snapshot. Per workload
(namespace + labels) it memoises the applicable policies split by action, so a request only
walks the rules that can concern it. Order: DENY, then ALLOW (none present → allow); AUDIT and
dry-run policies are evaluated and reported, never enforced; CUSTOM ones are not evaluated here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from meshguard.authz.authn import JwtPlan
from meshguard.authz.compiler import CompiledPolicy, Context, EngineOptions, compile_policy
from meshguard.authz.model import (
    GATEWAY_NAME_LABEL,
    Attachment,
    AuthorizationPolicy,
    RequestAuthentication,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"
_CACHE_LIMIT = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyMatch:
    policy: str
    action: str
    rule: int


@dataclasses.dataclass(frozen=True, slots=True)
class ShadowResult:
    """A dry-run verdict: what enforcing the dry-run policies of one action would have done."""

    allowed: bool
    match: PolicyMatch | None


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """``reason`` is one of ``deny_policy``, ``allow_policy``, ``no_allow_policy``,
    ``no_allow_match``; ``match`` is the deciding policy rule when one decided."""

    allowed: bool
    reason: str
    match: PolicyMatch | None = None
    audit: tuple[PolicyMatch, ...] = ()
    shadow_deny: ShadowResult | None = None
    shadow_allow: ShadowResult | None = None


def attachment_applies(
    attachment: Attachment,
    policy_namespace: str,
    namespace: str,
    labels: Mapping[str, str] | None,
    root_namespace: str,
) -> bool | None:
    """Whether a policy applies to the workload; None when that depends on unknown labels."""
    if policy_namespace not in (root_namespace, namespace):
        return False
    if attachment.target_refs:
        # Sidecars ignore targetRef policies; Gateway-API gateways take refs to themselves.
        gateway = labels.get(GATEWAY_NAME_LABEL) if labels is not None else None
        return (
            gateway is not None
            and policy_namespace == namespace
            and any(
                ref.group == GATEWAY_GROUP
                and ref.kind == "Gateway"
                and ref.name == gateway
                and ref.namespace in ("", namespace)
                for ref in attachment.target_refs
            )
        )
    if not attachment.selector:
        return True
    if labels is None:
        return None
    return all(labels.get(k) == v for k, v in attachment.selector.items())


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """The policies that apply to one workload, grouped the way evaluation reads them."""

    policies: tuple[CompiledPolicy, ...]
    deny: tuple[CompiledPolicy, ...]
    allow: tuple[CompiledPolicy, ...]
    audit: tuple[CompiledPolicy, ...]
    dry_deny: tuple[CompiledPolicy, ...]
    dry_allow: tuple[CompiledPolicy, ...]
    custom: tuple[CompiledPolicy, ...]
    authentications: tuple[RequestAuthentication, ...]
    jwt: JwtPlan
    unknown_labels_skipped: int

    @classmethod
    def build(
        cls,
        policies: Iterable[CompiledPolicy],
        authentications: tuple[RequestAuthentication, ...],
        skipped: int,
    ) -> Workload:
        applied = tuple(policies)

        def pick(action: str, dry_run: bool) -> tuple[CompiledPolicy, ...]:
            return tuple(
                p for p in applied if p.policy.action == action and p.policy.dry_run is dry_run
            )

        return cls(
            policies=applied,
            deny=pick("DENY", False),
            allow=pick("ALLOW", False),
            audit=pick("AUDIT", False),
            dry_deny=pick("DENY", True),
            dry_allow=pick("ALLOW", True),
            custom=tuple(p for p in applied if p.policy.action == "CUSTOM"),
            authentications=authentications,
            jwt=JwtPlan.build(authentications),
            unknown_labels_skipped=skipped,
        )

    def decide(self, ctx: Context) -> Decision:
        tcp = ctx.attrs.http is None
        allowed, reason, match = self._enforce(ctx, tcp)
        return Decision(
            allowed,
            reason,
            match,
            audit=_matches(self.audit, ctx, tcp) if self.audit else (),
            shadow_deny=_shadow(self.dry_deny, ctx, tcp, deny=True) if self.dry_deny else None,
            shadow_allow=_shadow(self.dry_allow, ctx, tcp, deny=False) if self.dry_allow else None,
        )

    def _enforce(self, ctx: Context, tcp: bool) -> tuple[bool, str, PolicyMatch | None]:
        for policy in self.deny:
            rule = policy.first_match(ctx, tcp)
            if rule is not None:
                return False, "deny_policy", PolicyMatch(policy.policy.ref, "DENY", rule.index)
        if not self.allow:
            return True, "no_allow_policy", None
        for policy in self.allow:
            rule = policy.first_match(ctx, tcp)
            if rule is not None:
                return True, "allow_policy", PolicyMatch(policy.policy.ref, "ALLOW", rule.index)
        return False, "no_allow_match", None


def _matches(
    policies: tuple[CompiledPolicy, ...], ctx: Context, tcp: bool
) -> tuple[PolicyMatch, ...]:
    found = []
    for policy in policies:
        rule = policy.first_match(ctx, tcp)
        if rule is not None:
            found.append(PolicyMatch(policy.policy.ref, policy.policy.action, rule.index))
    return tuple(found)


def _shadow(
    policies: tuple[CompiledPolicy, ...], ctx: Context, tcp: bool, *, deny: bool
) -> ShadowResult:
    found = _matches(policies, ctx, tcp)
    match = found[0] if found else None
    return ShadowResult(allowed=(match is None) if deny else (match is not None), match=match)


class PolicySet:
    """Every compiled policy of one snapshot; workloads' views are memoised (bounded)."""

    def __init__(
        self,
        policies: Iterable[AuthorizationPolicy],
        authentications: Iterable[RequestAuthentication] = (),
        options: EngineOptions | None = None,
    ) -> None:
        self.options = options or EngineOptions()
        ordered = sorted(policies, key=lambda p: (p.namespace, p.name))
        self.policies = tuple(compile_policy(p, self.options) for p in ordered)
        self.authentications = tuple(sorted(authentications, key=lambda a: (a.namespace, a.name)))
        self._workloads: dict[tuple[str, frozenset[tuple[str, str]] | None], Workload] = {}

    def workload(self, namespace: str, labels: Mapping[str, str] | None) -> Workload:
        key = (namespace, frozenset(labels.items()) if labels is not None else None)
        found = self._workloads.get(key)
        if found is None:
            found = self._build(namespace, labels)
            if len(self._workloads) >= _CACHE_LIMIT:
                self._workloads.clear()
            self._workloads[key] = found
        return found

    def _build(self, namespace: str, labels: Mapping[str, str] | None) -> Workload:
        root = self.options.root_namespace
        skipped = 0
        applied: list[CompiledPolicy] = []
        for compiled in self.policies:
            policy = compiled.policy
            verdict = attachment_applies(
                policy.attachment, policy.namespace, namespace, labels, root
            )
            skipped += verdict is None
            if verdict:
                applied.append(compiled)
        authentications = []
        for authn in self.authentications:
            verdict = attachment_applies(authn.attachment, authn.namespace, namespace, labels, root)
            skipped += verdict is None
            if verdict:
                authentications.append(authn)
        return Workload.build(applied, tuple(authentications), skipped)

    def decide(self, ctx: Context) -> Decision:
        attrs = ctx.attrs
        return self.workload(attrs.namespace, attrs.labels).decide(ctx)
