"""Compile AuthorizationPolicies into predicate trees, once per config snapshot.

A rule becomes entries of clauses; each clause is one field's positive values (any matches) or
negative values (none matches). Istio's translation quirks are applied here, not at request
time: HTTP-only clauses on TCP and clauses istiod cannot translate (a bad CIDR, an unknown
``when`` key) drop the whole rule of an ALLOW policy but only the clause of a DENY/AUDIT one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshguard.authz import conditions, matchers
from meshguard.authz.attributes import Identity, RequestAttributes
from meshguard.authz.model import (
    OPERATION_FIELDS,
    SOURCE_FIELDS,
    AuthorizationPolicy,
    FieldSpec,
    Rule,
    Values,
)


@dataclasses.dataclass(frozen=True, slots=True)
class EngineOptions:
    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    trust_domain_aliases: tuple[str, ...] = ()


class Context:
    """Per-request values the clauses read, derived once."""

    __slots__ = ("attrs", "host", "identity", "url_path")

    def __init__(self, attrs: RequestAttributes, identity: Identity | None = None) -> None:
        self.attrs = attrs
        self.identity = identity
        http = attrs.http
        self.url_path = http.url_path if http is not None else ""
        self.host = http.host.lower() if http is not None else ""


Predicate = Callable[[Context], bool]


@dataclasses.dataclass(frozen=True, slots=True)
class Clause:
    """``label`` names the field in the policy (for traces); ``holds`` applies the negation."""

    label: str
    test: Predicate
    negated: bool
    http_only: bool
    broken: bool = False

    def holds(self, ctx: Context) -> bool:
        return self.test(ctx) is not self.negated


Entry = tuple[Clause, ...]


def _entry_holds(entry: Entry, ctx: Context) -> bool:
    # Plain loops: this runs for every clause of every rule tried, and all()/any() over
    # generators cost more than the predicates themselves.
    for clause in entry:  # noqa: SIM110
        if clause.test(ctx) is clause.negated:
            return False
    return True


def _any_entry_holds(entries: tuple[Entry, ...], ctx: Context) -> bool:
    for entry in entries:  # noqa: SIM110
        if _entry_holds(entry, ctx):
            return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledRule:
    """``sources``/``operations`` empty = unconstrained; an empty entry matches everything."""

    index: int
    sources: tuple[Entry, ...]
    operations: tuple[Entry, ...]
    conditions: Entry

    def matches(self, ctx: Context) -> bool:
        if self.sources and not _any_entry_holds(self.sources, ctx):
            return False
        if self.operations and not _any_entry_holds(self.operations, ctx):
            return False
        return _entry_holds(self.conditions, ctx)

    def clauses(self) -> list[Clause]:
        return [c for group in (*self.sources, *self.operations, self.conditions) for c in group]


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: AuthorizationPolicy
    http_rules: tuple[CompiledRule, ...]
    tcp_rules: tuple[CompiledRule, ...]

    def rules_for(self, tcp: bool) -> tuple[CompiledRule, ...]:
        return self.tcp_rules if tcp else self.http_rules

    def first_match(self, ctx: Context, tcp: bool) -> CompiledRule | None:
        for rule in self.tcp_rules if tcp else self.http_rules:
            if rule.matches(ctx):
                return rule
        return None


# ---------------------------------------------------------------------------------------------
# Attribute readers and value predicates.


def _principal_values(values: Sequence[str], options: EngineOptions) -> list[str]:
    """Expand ``<td>/ns/<ns>/sa/<sa>`` over the trust domain and its aliases, as istiod does."""
    bundle = (options.trust_domain, *options.trust_domain_aliases)
    if len(bundle) == 1 and bundle[0] == "cluster.local":
        return list(values)
    out: list[str] = []
    for value in values:
        parts = value.split("/")
        if (
            len(parts) == 5
            and parts[1] == "ns"
            and parts[3] == "sa"
            and (parts[0] in bundle or parts[0] == "cluster.local")
        ):
            rest = "/".join(parts[1:])
            out.extend(f"{td}/{rest}" for td in bundle)
        else:
            out.append(value)
    return out


def _on_principal(match: matchers.StrMatch) -> Predicate:
    return lambda c: match(c.attrs.source_principal)


def _iss_sub(c: Context) -> tuple[str, str] | None:
    if c.identity is None:
        return None
    iss, sub = c.identity.issuer, c.identity.subject
    if not isinstance(iss, str) or not isinstance(sub, str):
        return None
    return iss, sub


def _request_principals(values: Sequence[str]) -> Predicate:
    tests = [matchers.request_principal(v) for v in values]

    def test(c: Context) -> bool:
        pair = _iss_sub(c)
        return pair is not None and any(t(*pair) for t in tests)

    return test


def _port_set(values: Sequence[str]) -> frozenset[int]:
    ports = frozenset(int(v) for v in values)
    if not all(v.isdigit() for v in values) or any(p > 65535 for p in ports):
        raise ValueError(f"invalid port in {list(values)}")
    return ports


def _dest_port(values: Sequence[str]) -> Predicate:
    ports = _port_set(values)
    return lambda c: c.attrs.destination_port in ports


def _http_string(read: Callable[[Context], str], match: matchers.StrMatch) -> Predicate:
    def test(c: Context) -> bool:
        return c.attrs.http is not None and match(read(c))

    return test


def _field_predicate(
    spec: FieldSpec, values: Sequence[str], namespace: str, options: EngineOptions
) -> Predicate:
    attr = spec.attr
    if attr == "principals":
        values = _principal_values(values, options)
        return _on_principal(matchers.any_of([matchers.principal(v) for v in values]))
    if attr == "namespaces":
        return _on_principal(matchers.any_of([matchers.namespace(v) for v in values]))
    if attr == "service_accounts":
        return _on_principal(
            matchers.any_of([matchers.service_account(v, namespace) for v in values])
        )
    if attr == "trust_domains":
        return _on_principal(matchers.any_of([matchers.trust_domain(v) for v in values]))
    if attr == "request_principals":
        return _request_principals(values)
    if attr == "ip_blocks":
        source = matchers.networks(values)
        return lambda c: source(c.attrs.source_ip)
    if attr == "remote_ip_blocks":
        remote = matchers.networks(values)
        return lambda c: remote(c.attrs.remote_ip)
    if attr == "ports":
        return _dest_port(values)
    if attr == "hosts":
        return _http_string(lambda c: c.host, matchers.any_of([matchers.host(v) for v in values]))
    if attr == "methods":
        method = matchers.any_of([matchers.header(v) for v in values])
        return _http_string(lambda c: c.attrs.http.method if c.attrs.http else "", method)
    if attr == "paths":
        return _http_string(
            lambda c: c.url_path, matchers.any_of([matchers.path(v) for v in values])
        )
    raise ValueError(f"unknown field {attr}")


def _lookup(document: Mapping[str, Any], keys: Sequence[str]) -> object:
    current: object = document
    for key in keys:
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def _string_or_list(match: matchers.StrMatch) -> Callable[[object], bool]:
    """A claim matches as a string, or as a list with a matching string element."""

    def test(value: object) -> bool:
        if isinstance(value, str):
            return match(value)
        if isinstance(value, list):
            return any(isinstance(v, str) and match(v) for v in value)
        return False

    return test


def _claim(keys: Sequence[str], values: Sequence[str]) -> Predicate:
    test = _string_or_list(matchers.any_of([matchers.string(v) for v in values]))

    def predicate(c: Context) -> bool:
        return c.identity is not None and test(_lookup(c.identity.claims, keys))

    return predicate


def _metadata(filter_name: str, keys: Sequence[str], values: Sequence[str]) -> Predicate:
    """``experimental.envoy.filters.*``: ``[v]`` values match a list element, others a string."""
    list_tests = [matchers.string(v[1:-1]) for v in values if v.startswith("[") and v.endswith("]")]
    plain = [matchers.string(v) for v in values if not (v.startswith("[") and v.endswith("]"))]

    def predicate(c: Context) -> bool:
        value = _lookup(c.attrs.metadata, [filter_name, *keys])
        if isinstance(value, str):
            return any(m(value) for m in plain)
        if isinstance(value, list):
            return any(isinstance(v, str) and m(v) for v in value for m in list_tests)
        return False

    return predicate


def _header(name: str, values: Sequence[str]) -> Predicate:
    lowered = name.lower()
    match = matchers.any_of([matchers.header(v) for v in values])

    def predicate(c: Context) -> bool:
        http = c.attrs.http
        if http is None:
            return False
        value = http.headers.get(lowered)
        return value is not None and match(value)

    return predicate


def _condition_predicate(
    key: conditions.ConditionKey, values: Sequence[str], namespace: str, options: EngineOptions
) -> Predicate:
    kind = key.kind
    by_field = {
        "source.principal": SOURCE_FIELDS[0],
        "request.auth.principal": SOURCE_FIELDS[1],
        "source.namespace": SOURCE_FIELDS[2],
        "source.serviceAccount": SOURCE_FIELDS[3],
        "source.trustDomain": SOURCE_FIELDS[4],
        "source.ip": SOURCE_FIELDS[5],
        "remote.ip": SOURCE_FIELDS[6],
        "destination.port": OPERATION_FIELDS[1],
    }
    if kind in by_field:
        return _field_predicate(by_field[kind], values, namespace, options)
    if kind == "destination.ip":
        dest = matchers.networks(values)
        return lambda c: dest(c.attrs.destination_ip)
    if kind == "connection.sni":
        sni = matchers.any_of([matchers.string(v) for v in values])
        return lambda c: sni(c.attrs.sni)
    if kind == "request.headers":
        return _header(key.args[0], values)
    if kind == "request.auth.claims":
        return _claim(key.args, values)
    if kind == "request.auth.audiences":
        return _claim(("aud",), values)
    if kind == "request.auth.presenter":
        return _claim(("azp",), values)
    if kind == "experimental.envoy.filters":
        return _metadata(key.filter, key.args, values)
    raise ValueError(f"unsupported condition key {kind}")


def _never(c: Context) -> bool:
    return False


def _clauses(
    label: str,
    values: Values,
    http_only: bool,
    build: Callable[[Sequence[str]], Predicate],
) -> list[Clause]:
    out: list[Clause] = []
    for negated, entries, name in (
        (False, values.values, label),
        (True, values.not_values, "not:" + label),
    ):
        if not entries:
            continue
        try:
            out.append(Clause(name, build(entries), negated, http_only))
        except (ValueError, TypeError, IndexError):
            out.append(Clause(name, _never, negated, http_only, broken=True))
    return out


def _field_entries(
    entries: Sequence[object],
    specs: Sequence[FieldSpec],
    label: str,
    namespace: str,
    options: EngineOptions,
) -> tuple[Entry, ...]:
    out: list[Entry] = []
    for index, entry in enumerate(entries):
        clauses: list[Clause] = []
        for spec in specs:
            values: Values = getattr(entry, spec.attr)
            clauses.extend(
                _clauses(
                    f"{label}[{index}].{spec.key}",
                    values,
                    spec.http_only,
                    lambda v, s=spec: _field_predicate(s, v, namespace, options),  # type: ignore[misc]
                )
            )
        out.append(tuple(clauses))
    return tuple(out)


def _condition_clauses(rule: Rule, namespace: str, options: EngineOptions) -> Entry:
    clauses: list[Clause] = []
    for index, cond in enumerate(rule.conditions):
        label = f"when[{index}] {cond.key}"
        try:
            key = conditions.parse_key(cond.key)
        except conditions.ConditionKeyError:
            # istiod cannot translate an unknown key: the condition is "broken".
            clauses.append(Clause(label, _never, False, False, broken=True))
            continue
        clauses.extend(
            _clauses(
                label,
                cond.values,
                key.http_only,
                lambda v, k=key: _condition_predicate(k, v, namespace, options),  # type: ignore[misc]
            )
        )
    return tuple(clauses)


def compile_rule(index: int, rule: Rule, namespace: str, options: EngineOptions) -> CompiledRule:
    return CompiledRule(
        index=index,
        sources=_field_entries(rule.sources, SOURCE_FIELDS, "from", namespace, options),
        operations=_field_entries(rule.operations, OPERATION_FIELDS, "to", namespace, options),
        conditions=_condition_clauses(rule, namespace, options),
    )


def restrict(rule: CompiledRule, action: str, tcp: bool) -> CompiledRule | None:
    """The rule as Envoy receives it: untranslatable (and, on TCP, HTTP-only) clauses removed.

    ALLOW loses the whole rule (less is allowed); DENY/AUDIT/CUSTOM lose only the clauses, so
    an entry left empty matches everything (more is denied)."""

    def dropped(c: Clause) -> bool:
        return c.broken or (tcp and c.http_only)

    if not any(dropped(c) for c in rule.clauses()):
        return rule
    if action == "ALLOW":
        return None

    def keep(entry: Entry) -> Entry:
        return tuple(c for c in entry if not dropped(c))

    return CompiledRule(
        rule.index,
        tuple(keep(e) for e in rule.sources),
        tuple(keep(e) for e in rule.operations),
        keep(rule.conditions),
    )


def compile_policy(policy: AuthorizationPolicy, options: EngineOptions) -> CompiledPolicy:
    rules = [compile_rule(i, r, policy.namespace, options) for i, r in enumerate(policy.rules)]

    def variant(tcp: bool) -> tuple[CompiledRule, ...]:
        kept = (restrict(r, policy.action, tcp) for r in rules)
        return tuple(r for r in kept if r is not None)

    return CompiledPolicy(policy, variant(False), variant(True))
