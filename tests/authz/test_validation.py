"""The authz validators against the webhook conformance corpus and the reference's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.authz.validation import VALIDATORS
from meshguard.common.findings import Finding, Severity
from meshguard.common.resources import parse_text
from meshguard.registry import default_registry
from tests.harness.paths import CONFORMANCE

CORPUS = CONFORMANCE / "webhook"
CASES = sorted(
    p
    for kind in ("authorizationpolicy", "requestauthentication")
    for p in (CORPUS / kind).glob("*.yaml")
)


def _expectation(text: str) -> str:
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        if key == "expect":
            return value.split(":")[0].strip()
    raise AssertionError("case without expect header")


def _validate(text: str) -> list[Finding]:
    [resource] = parse_text(text, "case.yaml")
    return default_registry().validate(resource)


@pytest.mark.skipif(not CORPUS.exists(), reason="conformance corpus not available")
@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_conformance_corpus(case: Path) -> None:
    text = case.read_text()
    expect = _expectation(text)
    findings = _validate(text)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    if expect == "allow":
        assert not findings, findings
    elif expect == "allow-with-warning":
        assert not errors and warnings, findings
    else:
        assert expect == "deny"
        assert errors, findings


def test_every_group_and_kind_is_registered() -> None:
    assert set(VALIDATORS) == {
        (group, kind)
        for group in ("security.istio.io", "meshguard.io")
        for kind in ("AuthorizationPolicy", "RequestAuthentication")
    }


def _ap(spec: str, *, api: str = "security.istio.io/v1", annotations: str = "") -> list[Finding]:
    meta = f"  annotations: {annotations}\n" if annotations else ""
    return _validate(
        f"apiVersion: {api}\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: ns\n"
        f"{meta}spec: {spec}\n"
    )


def _errors(findings: list[Finding]) -> list[str]:
    return [f"{f.path}: {f.message}" for f in findings if f.is_error]


@pytest.mark.parametrize(
    "api", ["security.istio.io/v1", "security.istio.io/v1beta1", "meshguard.io/v1alpha1"]
)
def test_served_versions(api: str) -> None:
    assert _ap("{}", api=api) == []


def test_unserved_version_is_rejected() -> None:
    assert _errors(_ap("{}", api="meshguard.io/v9"))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("{rules: [null]}", "spec.rules[0]"),
        ("{rules: [{from: []}]}", "spec.rules[0].from"),
        ("{rules: [{to: [{}]}]}", "spec.rules[0].to[0].operation"),
        ("{rules: [{from: [{source: {notIpBlocks: ['fe80::1/129']}}]}]}", "notIpBlocks[0]"),
        ("{rules: [{from: [{source: {remoteIpBlocks: [abc]}}]}]}", "remoteIpBlocks[0]"),
        ("{rules: [{from: [{source: {trustDomains: ['a*b']}}]}]}", "trustDomains[0]"),
        ("{rules: [{from: [{source: {trustDomains: ['a/b']}}]}]}", "trustDomains[0]"),
        ("{rules: [{from: [{source: {serviceAccounts: ['*']}}]}]}", "serviceAccounts[0]"),
        ("{rules: [{from: [{source: {notServiceAccounts: [a], principals: [b]}}]}]}", "source"),
        ("{rules: [{to: [{operation: {notPorts: ['-1']}}]}]}", "notPorts[0]"),
        ("{rules: [{to: [{operation: {paths: ['/a/{*}.txt']}}]}]}", "paths[0]"),
        ("{rules: [{to: [{operation: {paths: ['/a/*/{*}']}}]}]}", "paths[0]"),
        ("{rules: [{to: [{operation: {methods: ['']}}]}]}", "methods[0]"),
        ("{rules: [{to: [{operation: {method: [GET]}}]}]}", "operation.method"),
        ("{rules: [{when: [{key: destination.port, values: ['70000']}]}]}", "when[0].values[0]"),
        ("{rules: [{when: [{key: destination.namespace, values: [x]}]}]}", "when[0].key"),
        ("{rules: [{when: [{key: 'request.auth.claims', values: [x]}]}]}", "when[0].key"),
        ("{rules: [{when: [{key: 'source.serviceAccount', values: ['a/b/c']}]}]}", "values[0]"),
        ("{action: BLOCK, rules: [{}]}", "spec.action"),
        (
            "{action: CUSTOM, provider: {name: x}, "
            "rules: [{from: [{source: {notNamespaces: [a]}}]}]}",
            "notNamespaces",
        ),
        (
            "{action: CUSTOM, provider: {name: x}, rules: [{when: [{key: source.principal, "
            "values: [a]}]}]}",
            "when[0].key",
        ),
        ("{action: DENY, rules: []}", "spec.rules"),
        ("{selector: {matchLabels: {'*': x}}}", "matchLabels"),
        (
            "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g, "
            "namespace: other}]}",
            "targetRefs[0].namespace",
        ),
    ],
)
def test_authorization_policy_errors(spec: str, fragment: str) -> None:
    errors = _errors(_ap(spec))
    assert any(fragment in e for e in errors), errors


@pytest.mark.parametrize(
    "spec",
    [
        "{rules: [{}]}",
        "{rules: []}",
        "{action: AUDIT}",
        "{rules: [{when: [{key: 'request.headers[:method]', values: [GET]}]}]}",
        "{rules: [{when: [{key: 'request.auth.claims[a][b]', notValues: [x]}]}]}",
        "{rules: [{when: [{key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', "
        "values: ['[update]']}]}]}",
        "{rules: [{when: [{key: remote.ip, values: ['2001:db8::/32']}]}]}",
        "{rules: [{from: [{source: {serviceAccounts: [a, ns/b], trustDomains: ['*.local']}}]}]}",
        "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}]}",
        "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}], "
        "to: [{operation: {ports: ['80']}}]}]}",
    ],
)
def test_authorization_policy_valid(spec: str) -> None:
    assert _ap(spec) == []


def test_deny_rule_with_only_http_fields_warns_and_tcp_fields_silence_it() -> None:
    warned = _ap("{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}")
    assert [f.severity for f in warned] == [Severity.WARNING]
    assert _ap("{action: DENY, rules: [{when: [{key: source.ip, values: [1.2.3.4]}]}]}") == []


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True", "0", "f", "False"])
def test_dry_run_accepts_go_booleans(value: str) -> None:
    assert _ap("{}", annotations=f"{{istio.io/dry-run: '{value}'}}") == []


@pytest.mark.parametrize("value", ["yes", "on", "", "tRUE"])
def test_dry_run_rejects_other_values(value: str) -> None:
    assert _errors(_ap("{}", annotations=f"{{istio.io/dry-run: '{value}'}}"))


def test_dry_run_on_audit_is_rejected() -> None:
    assert _errors(_ap("{action: AUDIT}", annotations="{istio.io/dry-run: 'true'}"))


def _ra(rule: str) -> list[Finding]:
    return _validate(
        "apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\nmetadata:\n"
        f"  name: r\n  namespace: ns\nspec:\n  jwtRules: [{rule}]\n"
    )


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("{issuer: a, jwks: '{\"keys\": 3}'}", "jwks"),
        ("{issuer: a, jwks: '[]'}", "jwks"),
        ("{issuer: a, jwks_uri: 'https://x/j', jwks: '{\"keys\": []}'}", "jwtRules[0]"),
        ("{issuer: a, jwksUri: 'https://'}", "jwksUri"),
        ("{issuer: a, fromCookies: ['']}", "fromCookies[0]"),
        ("{issuer: a, outputPayloadToHeader: 'a b'}", "outputPayloadToHeader"),
        ("{issuer: a, outputClaimToHeaders: [{header: x}]}", "claim"),
        ("{issuer: a, timeout: 'soon'}", "timeout"),
        ("{issuer: a, forwardOriginalToken: 'yes'}", "forwardOriginalToken"),
        ("{issuer: a, isuer: b}", "isuer"),
    ],
)
def test_request_authentication_errors(rule: str, fragment: str) -> None:
    errors = _errors(_ra(rule))
    assert any(fragment in e for e in errors), errors


def test_request_authentication_private_key_material_warns() -> None:
    jwks = '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}]}'
    findings = _ra(f"{{issuer: a, jwks: '{jwks}'}}")
    assert [f.severity for f in findings] == [Severity.WARNING]
