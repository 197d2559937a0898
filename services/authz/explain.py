"""``meshguard explain``: the decision for one request, with the reasoning behind it.

Lists the policies that apply to the request's workload and, for every rule, which clause held
or failed, so a user can see why a request was allowed or denied without reading Envoy's RBAC.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from meshguard.authz.attributes import HttpRequest, Identity, RequestAttributes
from meshguard.authz.checkrequest import InvalidRequest, parse_labels
from meshguard.authz.compiler import Clause, CompiledPolicy, CompiledRule, Context
from meshguard.authz.engine import Decision, Workload


def _ip(value: object, what: str) -> Any:
    if value in (None, ""):
        return None
    try:
        return ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {value!r} is not an IP address") from exc


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{what} must be a mapping")
    return value


def request_from_document(doc: Mapping[str, Any]) -> tuple[RequestAttributes, Identity | None]:
    """Read the ``--request`` file format (see README): workload, peers, optional ``http``
    (absent = TCP) and optional ``claims`` standing for an already verified JWT."""
    labels = doc.get("labels")
    if isinstance(labels, str):
        labels = parse_labels(labels)
    source = _mapping(doc.get("source"), "source")
    destination = _mapping(doc.get("destination"), "destination")
    http_doc = doc.get("http")
    http = None
    if http_doc is not None:
        http_map = _mapping(http_doc, "http")
        host = str(http_map.get("host", ""))
        method = str(http_map.get("method", "GET"))
        path = str(http_map.get("path", "/"))
        headers = {
            str(k).lower(): str(v)
            for k, v in _mapping(http_map.get("headers"), "http.headers").items()
        }
        headers.setdefault(":authority", host)
        headers.setdefault(":method", method)
        headers.setdefault(":path", path)
        http = HttpRequest(
            host, method, path, MappingProxyType(headers), str(http_map.get("scheme", ""))
        )
    source_ip = _ip(source.get("ip"), "source.ip")
    claims = doc.get("claims")
    attrs = RequestAttributes(
        namespace=str(doc.get("namespace", "")),
        labels=MappingProxyType({str(k): str(v) for k, v in labels.items()})
        if isinstance(labels, Mapping)
        else None,
        source_principal=str(source.get("principal", "")),
        source_ip=source_ip,
        remote_ip=_ip(doc.get("remoteIp"), "remoteIp") or source_ip,
        destination_ip=_ip(destination.get("ip"), "destination.ip"),
        destination_port=int(destination["port"]) if destination.get("port") is not None else None,
        sni=str(doc.get("sni", "")),
        http=http,
    )
    identity = Identity(dict(_mapping(claims, "claims"))) if claims is not None else None
    return attrs, identity


def _clause_line(clause: Clause, ctx: Context) -> str:
    holds = clause.holds(ctx)
    mark = "ok  " if holds else "FAIL"
    return f"        {mark} {clause.label}"


def _rule_lines(rule: CompiledRule, ctx: Context) -> list[str]:
    lines = [f"    rule[{rule.index}]: {'MATCH' if rule.matches(ctx) else 'no match'}"]
    if not rule.clauses():
        lines.append("        (no constraints: matches every request)")
    for group, entries in (("from", rule.sources), ("to", rule.operations)):
        for index, entry in enumerate(entries):
            verdict = all(c.holds(ctx) for c in entry)
            lines.append(f"      {group}[{index}]: {'holds' if verdict else 'fails'}")
            lines.extend(_clause_line(c, ctx) for c in entry)
    lines.extend(_clause_line(c, ctx) for c in rule.conditions)
    return lines


def _policy_lines(policy: CompiledPolicy, ctx: Context, tcp: bool) -> list[str]:
    p = policy.policy
    flags = " (dry-run: evaluated, not enforced)" if p.dry_run else ""
    lines = [f"  {p.ref} action={p.action}{flags}"]
    if p.action == "CUSTOM":
        return [*lines, "    not evaluated here: CUSTOM policies call the external authorizer"]
    if not p.rules:
        lines.append("    no rules: matches nothing")
    compiled = {r.index: r for r in policy.rules_for(tcp)}
    for index in range(len(p.rules)):
        rule = compiled.get(index)
        if rule is None:
            why = (
                "uses HTTP-only fields on a TCP connection" if tcp else "has untranslatable values"
            )
            lines.append(f"    rule[{index}]: dropped ({why})")
        else:
            lines.extend(_rule_lines(rule, ctx))
    return lines


def explain(workload: Workload, ctx: Context, decision: Decision) -> str:
    attrs = ctx.attrs
    tcp = attrs.http is None
    verdict = "ALLOW" if decision.allowed else "DENY"
    deciding = f" by {decision.match.policy} rule[{decision.match.rule}]" if decision.match else ""
    lines = [f"decision: {verdict} ({decision.reason}{deciding})"]
    labels = dict(attrs.labels) if attrs.labels is not None else "unknown"
    lines.append(f"workload: namespace={attrs.namespace or '-'} labels={labels}")
    lines.append(f"protocol: {'tcp' if tcp else 'http'}")
    if workload.unknown_labels_skipped:
        lines.append(
            f"note: {workload.unknown_labels_skipped} selector-scoped resource(s) skipped "
            "because the workload labels are unknown"
        )
    if not workload.policies:
        lines.append("policies: none apply (allowed by default)")
    else:
        lines.append("policies:")
        for policy in workload.policies:
            lines.extend(_policy_lines(policy, ctx, tcp))
    for audit in decision.audit:
        lines.append(f"audit: {audit.policy} rule[{audit.rule}] matched")
    for name, shadow in (
        ("dry-run DENY", decision.shadow_deny),
        ("dry-run ALLOW", decision.shadow_allow),
    ):
        if shadow is not None:
            hit = f" ({shadow.match.policy} rule[{shadow.match.rule}])" if shadow.match else ""
            lines.append(f"{name}: would {'allow' if shadow.allowed else 'deny'}{hit}")
    return "\n".join(lines)
