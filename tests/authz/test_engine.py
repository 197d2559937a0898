"""Decisions from the rules of the reference (authz-semantics.md §1, §2, §5)."""

from __future__ import annotations

import dataclasses

import pytest

from meshguard.authz.engine import PolicyMatch
from tests.authz.support import allowed, ap, decide, policy_set, request

ROOT = "istio-system"


# §1.2 order and §1.3 degenerate specs ---------------------------------------------------------


def test_no_policy_allows() -> None:
    d = decide(policy_set(""), request())
    assert d.allowed and d.reason == "no_allow_policy"


def test_allow_nothing_denies_everything() -> None:
    d = decide(policy_set(ap("{}")), request())
    assert not d.allowed and d.reason == "no_allow_match"


def test_rules_empty_list_is_allow_nothing() -> None:
    assert not allowed("{rules: []}", request())


def test_empty_rule_allows_everything() -> None:
    d = decide(policy_set(ap("{rules: [{}]}")), request())
    assert d.allowed and d.match == PolicyMatch("foo/p", "ALLOW", 0)


def test_deny_with_empty_rule_denies_everything() -> None:
    d = decide(policy_set(ap("{action: DENY, rules: [{}]}")), request())
    assert not d.allowed and d.reason == "deny_policy"


def test_deny_without_rules_matches_nothing_when_loaded_leniently() -> None:
    assert allowed("{action: DENY}", request(), strict=False)


def test_null_rule_is_skipped_when_loaded_leniently() -> None:
    text = ap("{rules: [null, {to: [{operation: {methods: [GET]}}]}]}")
    d = decide(policy_set(text, strict=False), request())
    assert d.allowed and d.match is not None and d.match.rule == 0


def test_deny_wins_over_allow() -> None:
    text = ap("{rules: [{}]}", name="a") + ap("{action: DENY, rules: [{}]}", name="d")
    d = decide(policy_set(text), request())
    assert not d.allowed and d.match == PolicyMatch("foo/d", "DENY", 0)


def test_allow_nothing_does_not_veto_another_allow() -> None:
    text = ap("{}", name="nothing") + ap("{rules: [{to: [{operation: {paths: [/ok]}}]}]}")
    assert decide(policy_set(text), request(path="/ok")).allowed
    assert not decide(policy_set(text), request(path="/no")).allowed


def test_audit_is_reported_and_does_not_create_default_deny() -> None:
    d = decide(policy_set(ap("{action: AUDIT, rules: [{}]}")), request())
    assert d.allowed and d.reason == "no_allow_policy"
    assert d.audit == (PolicyMatch("foo/p", "AUDIT", 0),)


def test_custom_is_not_evaluated_and_does_not_create_default_deny() -> None:
    spec = "{action: CUSTOM, provider: {name: x}, rules: [{}]}"
    assert allowed(spec, request())


def test_audit_does_not_stop_allow_nothing() -> None:
    text = ap("{}", name="nothing") + ap("{action: AUDIT, rules: [{}]}", name="audit")
    assert not decide(policy_set(text), request()).allowed


# §1.4 dry run -----------------------------------------------------------------------------


def test_dry_run_deny_is_reported_not_enforced() -> None:
    text = ap("{action: DENY, rules: [{}]}", annotations="{istio.io/dry-run: 'true'}")
    d = decide(policy_set(text), request())
    assert d.allowed
    assert d.shadow_deny is not None and not d.shadow_deny.allowed
    assert d.shadow_deny.match == PolicyMatch("foo/p", "DENY", 0)


def test_only_dry_run_allow_behaves_as_no_allow_policy() -> None:
    text = ap("{rules: [{to: [{operation: {paths: [/x]}}]}]}", annotations="{istio.io/dry-run: T}")
    d = decide(policy_set(text), request(path="/y"))
    assert d.allowed and d.reason == "no_allow_policy"
    assert d.shadow_allow is not None and not d.shadow_allow.allowed
    hit = decide(policy_set(text), request(path="/x"))
    assert hit.shadow_allow is not None and hit.shadow_allow.allowed


def test_unparsable_dry_run_is_enforced_when_loaded_leniently() -> None:
    text = ap("{action: DENY, rules: [{}]}", annotations="{istio.io/dry-run: 'yes'}")
    assert not decide(policy_set(text, strict=False), request()).allowed


def test_dry_run_false_is_enforced() -> None:
    text = ap("{action: DENY, rules: [{}]}", annotations="{istio.io/dry-run: '0'}")
    assert not decide(policy_set(text), request()).allowed


# §1.1 scoping -----------------------------------------------------------------------------


def test_policy_in_other_namespace_never_applies() -> None:
    assert allowed("---" + ap("{}", namespace="bar")[3:], request(namespace="foo"))


def test_root_namespace_policy_without_selector_is_mesh_wide() -> None:
    text = ap("{action: DENY, rules: [{}]}", namespace=ROOT)
    assert not decide(policy_set(text), request(namespace="anything")).allowed


def test_root_namespace_is_configurable() -> None:
    text = ap("{action: DENY, rules: [{}]}", namespace="mesh-root")
    assert decide(policy_set(text), request()).allowed
    assert not decide(policy_set(text, root_namespace="mesh-root"), request()).allowed


def test_root_selector_matches_workloads_in_every_namespace() -> None:
    text = ap("{selector: {matchLabels: {app: a}}, action: DENY, rules: [{}]}", namespace=ROOT)
    ps = policy_set(text)
    assert not decide(ps, request(namespace="x", labels={"app": "a", "v": "1"})).allowed
    assert decide(ps, request(namespace="x", labels={"app": "b"})).allowed


def test_selector_is_a_subset_match() -> None:
    spec = "{selector: {matchLabels: {app: a, v: '1'}}, action: DENY, rules: [{}]}"
    ps = policy_set(ap(spec))
    assert decide(ps, request(labels={"app": "a"})).allowed
    assert not decide(ps, request(labels={"app": "a", "v": "1", "x": "y"})).allowed


def test_empty_match_labels_selects_every_workload() -> None:
    text = ap("{selector: {matchLabels: {}}, action: DENY, rules: [{}]}")
    assert not decide(policy_set(text), request(labels={})).allowed


def test_unknown_labels_skip_selector_policies_and_count_them() -> None:
    ps = policy_set(ap("{selector: {matchLabels: {app: a}}}"))
    attrs = dataclasses.replace(request(), labels=None)
    assert decide(ps, attrs).allowed
    assert ps.workload("foo", None).unknown_labels_skipped == 1


def test_target_ref_policy_is_ignored_by_sidecars() -> None:
    spec = "{targetRefs: [{kind: Service, group: '', name: svc}], action: DENY, rules: [{}]}"
    assert allowed(spec, request())


def test_target_ref_applies_to_its_gateway() -> None:
    spec = (
        "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}], "
        "action: DENY, rules: [{}]}"
    )
    gw = {"gateway.networking.k8s.io/gateway-name": "gw"}
    other = {"gateway.networking.k8s.io/gateway-name": "other"}
    assert not allowed(spec, request(labels=gw))
    assert allowed(spec, request(labels=other))


def test_root_deny_cannot_be_overridden_by_namespace_allow() -> None:
    text = ap("{action: DENY, rules: [{}]}", namespace=ROOT) + ap("{rules: [{}]}")
    assert not decide(policy_set(text), request()).allowed


def test_root_allow_nothing_does_not_veto_namespace_allow() -> None:
    text = ap("{}", namespace=ROOT) + ap("{rules: [{}]}")
    assert decide(policy_set(text), request()).allowed


# §2 rule algebra --------------------------------------------------------------------------


def test_values_are_ored_fields_anded() -> None:
    spec = "{rules: [{to: [{operation: {methods: [GET, HEAD], paths: [/a]}}]}]}"
    assert allowed(spec, request(method="HEAD", path="/a"))
    assert not allowed(spec, request(method="HEAD", path="/b"))


def test_from_entries_ored_and_when_anded() -> None:
    spec = (
        "{rules: [{from: [{source: {ipBlocks: [1.1.1.1]}}, {source: {ipBlocks: [10.0.0.0/8]}}], "
        "when: [{key: 'request.headers[x]', values: [a]}, "
        "{key: 'request.headers[y]', values: [b]}]}]}"
    )
    assert allowed(spec, request(headers={"x": "a", "y": "b"}))
    assert not allowed(spec, request(headers={"x": "a"}))


def test_positive_and_negative_of_one_field_both_hold() -> None:
    spec = "{rules: [{to: [{operation: {paths: ['/api/*'], notPaths: [/api/admin]}}]}]}"
    assert allowed(spec, request(path="/api/x"))
    assert not allowed(spec, request(path="/api/admin"))


@pytest.mark.parametrize(
    "source",
    [
        "notPrincipals: [cluster.local/ns/foo/sa/x]",
        "notNamespaces: [foo]",
        "notRequestPrincipals: ['*']",
        "notServiceAccounts: [foo/x]",
    ],
)
def test_negative_fields_match_absent_attributes(source: str) -> None:
    spec = f"{{rules: [{{from: [{{source: {{{source}}}}}]}}]}}"
    assert allowed(spec, request(principal=""))


@pytest.mark.parametrize(
    "key",
    ["request.headers[x-missing]", "request.auth.claims[groups]", "request.auth.principal"],
)
def test_not_values_match_absent_attributes(key: str) -> None:
    spec = f"{{rules: [{{when: [{{key: '{key}', notValues: [a]}}]}}]}}"
    assert allowed(spec, request())


def test_allow_with_not_request_principals_admits_anonymous_traffic() -> None:
    spec = "{rules: [{from: [{source: {notRequestPrincipals: ['https://bad/evil']}}]}]}"
    assert allowed(spec, request())


# §5 TCP --------------------------------------------------------------------------------


def test_tcp_allow_rule_with_http_field_is_dropped_entirely() -> None:
    spec = "{rules: [{to: [{operation: {ports: ['8080'], methods: [GET]}}]}]}"
    assert allowed(spec, request())
    d = decide(policy_set(ap(spec)), request(tcp=True))
    assert not d.allowed and d.reason == "no_allow_match"


def test_tcp_allow_rule_dropped_even_if_another_to_entry_is_tcp_only() -> None:
    spec = "{rules: [{to: [{operation: {ports: ['8080']}}, {operation: {paths: [/x]}}]}]}"
    assert not allowed(spec, request(tcp=True))


def test_tcp_allow_rule_with_tcp_fields_only_still_applies() -> None:
    spec = (
        "{rules: [{to: [{operation: {ports: ['8080']}}], "
        "from: [{source: {ipBlocks: [10.0.0.1]}}]}]}"
    )
    assert allowed(spec, request(tcp=True))
    assert not allowed(spec, request(tcp=True, port=9090))


def test_tcp_deny_with_only_http_fields_denies_every_connection() -> None:
    spec = "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}"
    assert not allowed(spec, request(tcp=True))


def test_tcp_deny_keeps_tcp_fields() -> None:
    spec = "{action: DENY, rules: [{to: [{operation: {methods: [POST], ports: ['9000']}}]}]}"
    assert not allowed(spec, request(tcp=True, port=9000))
    assert allowed(spec, request(tcp=True, port=9001))
    assert allowed(spec, request(port=9000, method="GET"))


def test_tcp_deny_loses_http_when_conditions() -> None:
    spec = (
        "{action: DENY, rules: [{when: [{key: 'request.headers[x]', values: [a]}, "
        "{key: destination.port, values: ['9000']}]}]}"
    )
    assert not allowed(spec, request(tcp=True, port=9000))
    assert allowed(spec, request(tcp=False, port=9000))


def test_untranslatable_value_drops_allow_rule_and_deny_clause() -> None:
    bad_allow = "{rules: [{from: [{source: {ipBlocks: [bad]}}]}]}"
    assert not allowed(bad_allow, request(), strict=False)
    bad_deny = "{action: DENY, rules: [{when: [{key: request.method, values: [GET]}]}]}"
    assert not allowed(bad_deny, request(method="POST"), strict=False)
