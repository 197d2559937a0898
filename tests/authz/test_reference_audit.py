"""Audit of the engine against authz-semantics.md, one test (or table row) per rule.

Each table's ids name the section and the rule so a failure points at the reference. Policies
are flow-style YAML specs (``support.ap``); requests are built with ``support.request``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from meshguard.authz.attributes import RequestAttributes
from meshguard.authz.authn import Authenticator
from meshguard.authz.authorizer import DENIED_BODY, Authorizer, Outcome
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule
from meshguard.common.findings import FindingsError
from tests.authz.support import ISSUER, Signer, ap, decide, policy_set, request

SLEEP = "spiffe://cluster.local/ns/foo/sa/sleep"
RSA = Signer("RSA")
OTHER = Signer("EC", kid="k2")
OTHER_ISSUER = "https://other.example.com"


def _allowed(text: str, attrs: RequestAttributes, claims: dict[str, Any] | None = None) -> bool:
    return decide(policy_set(text), attrs, claims).allowed


def _from(source: str) -> str:
    return ap(f"{{rules: [{{from: [{{source: {source}}}]}}]}}")


def _to(operation: str) -> str:
    return ap(f"{{rules: [{{to: [{{operation: {operation}}}]}}]}}")


def _when(key: str, values: str = "", not_values: str = "", action: str = "ALLOW") -> str:
    cond = f"key: '{key}'"
    cond += f", values: {values}" if values else ""
    cond += f", notValues: {not_values}" if not_values else ""
    return ap(f"{{action: {action}, rules: [{{when: [{{{cond}}}]}}]}}")


# §1.1 Attachment and scoping -----------------------------------------------------------------

DENY_ALL = "{action: DENY, rules: [{}]}"


@pytest.mark.parametrize(
    ("policy", "namespace", "labels", "applies"),
    [
        pytest.param(ap(DENY_ALL, namespace="bar"), "foo", {}, False, id="other-namespace"),
        pytest.param(ap(DENY_ALL, namespace="istio-system"), "foo", {}, True, id="root-meshwide"),
        pytest.param(
            ap(
                "{selector: {matchLabels: {app: a}}, action: DENY, rules: [{}]}",
                namespace="istio-system",
            ),
            "baz",
            {"app": "a"},
            True,
            id="root-selector-any-namespace",
        ),
        pytest.param(
            ap(
                "{selector: {matchLabels: {app: a}}, action: DENY, rules: [{}]}",
                namespace="istio-system",
            ),
            "baz",
            {"app": "b"},
            False,
            id="root-selector-label-mismatch",
        ),
        pytest.param(
            ap("{selector: {matchLabels: {app: a}}, action: DENY, rules: [{}]}", namespace="bar"),
            "foo",
            {"app": "a"},
            False,
            id="non-root-selector-other-namespace",
        ),
        pytest.param(
            ap("{selector: {matchLabels: {app: a, v: '1'}}, action: DENY, rules: [{}]}"),
            "foo",
            {"app": "a", "v": "1", "extra": "x"},
            True,
            id="selector-subset",
        ),
        pytest.param(
            ap("{selector: {matchLabels: {app: a, v: '1'}}, action: DENY, rules: [{}]}"),
            "foo",
            {"app": "a"},
            False,
            id="selector-missing-label",
        ),
        pytest.param(
            ap("{selector: {matchLabels: {}}, action: DENY, rules: [{}]}"),
            "foo",
            {"app": "z"},
            True,
            id="empty-matchLabels-selects-all",
        ),
        pytest.param(
            ap(
                "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}],"
                " action: DENY, rules: [{}]}"
            ),
            "foo",
            {"app": "a"},
            False,
            id="targetRefs-invisible-to-sidecar",
        ),
        pytest.param(
            ap(
                "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}],"
                " action: DENY, rules: [{}]}"
            ),
            "foo",
            {"gateway.networking.k8s.io/gateway-name": "gw"},
            True,
            id="targetRef-to-own-gateway",
        ),
        pytest.param(
            ap(
                "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: other}],"
                " action: DENY, rules: [{}]}"
            ),
            "foo",
            {"gateway.networking.k8s.io/gateway-name": "gw"},
            False,
            id="targetRef-other-gateway",
        ),
        pytest.param(
            ap(
                "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}],"
                " action: DENY, rules: [{}]}",
                namespace="istio-system",
            ),
            "foo",
            {"gateway.networking.k8s.io/gateway-name": "gw"},
            False,
            id="targetRef-from-root-not-applied",
        ),
        pytest.param(
            ap("{selector: {matchLabels: {app: gw}}, action: DENY, rules: [{}]}"),
            "foo",
            {"app": "gw", "gateway.networking.k8s.io/gateway-name": "gw"},
            True,
            id="selector-on-gateway-api-gateway",
        ),
    ],
)
def test_scoping(policy: str, namespace: str, labels: dict[str, str], applies: bool) -> None:
    assert _allowed(policy, request(namespace=namespace, labels=labels)) is not applies


def test_root_deny_is_not_overridden_by_namespace_allow() -> None:
    text = ap(DENY_ALL, namespace="istio-system", name="d") + ap("{rules: [{}]}", name="a")
    assert not _allowed(text, request())


def test_root_allow_nothing_does_not_veto_namespace_allow() -> None:
    text = ap("{}", namespace="istio-system", name="n") + ap("{rules: [{}]}", name="a")
    assert _allowed(text, request())


# §1.2 Actions and order ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        pytest.param(
            ap("{action: DENY, rules: [{}]}", name="d") + ap("{rules: [{}]}"),
            False,
            id="deny-before-allow",
        ),
        pytest.param(
            ap("{action: DENY, rules: [{to: [{operation: {paths: [/x]}}]}]}"),
            True,
            id="no-allow-policy-allows",
        ),
        pytest.param(
            ap("{rules: [{to: [{operation: {paths: [/x]}}]}]}"), False, id="allow-no-match-denies"
        ),
        pytest.param(ap("{rules: [{to: [{operation: {paths: [/]}}]}]}"), True, id="allow-match"),
        pytest.param(
            ap("{rules: [{to: [{operation: {paths: [/x]}}]}]}", name="a")
            + ap("{rules: [{}]}", name="b"),
            True,
            id="any-allow-allows",
        ),
        pytest.param(
            ap("{action: AUDIT, rules: [{to: [{operation: {paths: [/x]}}]}]}"),
            True,
            id="audit-is-not-an-allow-policy",
        ),
        pytest.param(ap("{action: AUDIT, rules: [{}]}"), True, id="audit-match-does-not-deny"),
        pytest.param(
            ap(
                "{action: CUSTOM, provider: {name: ext},"
                " rules: [{to: [{operation: {paths: [/x]}}]}]}"
            ),
            True,
            id="custom-is-not-an-allow-policy",
        ),
        pytest.param(
            ap("{action: CUSTOM, provider: {name: ext}, rules: [{}]}"),
            True,
            id="custom-not-enforced-here",
        ),
        pytest.param(
            ap("{rules: [{to: [{operation: {paths: [/x]}}]}]}").replace(
                "spec: {", "spec: {action: ALLOW, "
            ),
            False,
            id="explicit-allow",
        ),
    ],
)
def test_action_order(text: str, allowed: bool) -> None:
    assert _allowed(text, request(path="/")) is allowed


def test_audit_match_is_reported_without_effect() -> None:
    decision = decide(policy_set(ap("{action: AUDIT, rules: [{}]}")), request())
    assert decision.allowed and [m.policy for m in decision.audit] == ["foo/p"]


def test_action_defaults_to_allow() -> None:
    # An ALLOW policy that does not match denies; a DENY one would not.
    assert not _allowed(ap("{rules: [{to: [{operation: {methods: [POST]}}]}]}"), request())


async def test_allow_no_match_is_403_rbac_access_denied() -> None:
    outcome = await _check(ap("{rules: [{to: [{operation: {paths: [/x]}}]}]}"), request())
    assert (outcome.allowed, outcome.status, outcome.body) == (False, 403, DENIED_BODY)


# §1.3 Degenerate specs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        pytest.param("{}", False, id="allow-empty-spec-allow-nothing"),
        pytest.param("{rules: []}", False, id="allow-empty-rules"),
        pytest.param("{rules: [{}]}", True, id="allow-empty-rule-allows-all"),
        pytest.param("{action: DENY, rules: []}", True, id="deny-empty-rules-matches-nothing"),
        pytest.param("{action: DENY, rules: [{}]}", False, id="deny-empty-rule-denies-all"),
        pytest.param("{action: AUDIT}", True, id="audit-empty-spec"),
        pytest.param("{action: AUDIT, rules: [{}]}", True, id="audit-all"),
        pytest.param(
            "{rules: [{from: [{source: {principals: ['*']}}]}]}", False, id="from-only-rule"
        ),
    ],
)
def test_degenerate_specs(spec: str, allowed: bool) -> None:
    # DENY without rules is a validation error; lenient loading shows what istiod would do.
    assert decide(policy_set(ap(spec), strict=False), request()).allowed is allowed


def test_rule_with_only_from_matches_every_operation() -> None:
    text = _from("{principals: [cluster.local/ns/foo/sa/sleep]}")
    for method, path in (("GET", "/"), ("DELETE", "/admin"), ("POST", "/x?y")):
        assert _allowed(text, request(principal=SLEEP, method=method, path=path))


def test_null_rule_is_skipped_when_lenient() -> None:
    lenient = policy_set(ap("{rules: [null, {to: [{operation: {paths: [/a]}}]}]}"), strict=False)
    assert decide(lenient, request(path="/a")).allowed
    assert not decide(lenient, request(path="/b")).allowed
    deny = policy_set(ap("{action: DENY, rules: [null]}"), strict=False)
    assert decide(deny, request()).allowed


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("{action: DENY}", id="deny-empty-spec"),
        pytest.param("{action: CUSTOM, provider: {name: ext}}", id="custom-empty-spec"),
        pytest.param("{rules: [null]}", id="null-rule"),
        pytest.param("{rules: [{from: []}]}", id="empty-from"),
        pytest.param("{rules: [{to: []}]}", id="empty-to"),
        pytest.param("{rules: [{from: [{source: {}}]}]}", id="empty-source"),
        pytest.param("{rules: [{to: [{operation: {}}]}]}", id="empty-operation"),
        pytest.param("{rules: [{to: [{operation: {paths: ['']}}]}]}", id="empty-string"),
        pytest.param("{rules: [{when: [{key: source.ip}]}]}", id="when-without-values"),
        pytest.param("{rules: [{when: [{key: foo.bar, values: [x]}]}]}", id="unknown-when-key"),
        pytest.param("{rules: [{from: [{source: {ipBlocks: [10.0.0.300]}}]}]}", id="bad-ip"),
        pytest.param("{rules: [{from: [{source: {ipBlocks: ['10.0.0.0/33']}}]}]}", id="bad-cidr"),
        pytest.param("{rules: [{to: [{operation: {ports: [http]}}]}]}", id="bad-port"),
        pytest.param("{rules: [{to: [{operation: {ports: ['70000']}}]}]}", id="port-out-of-range"),
        pytest.param("{rules: [{to: [{operation: {ports: [8080]}}]}]}", id="port-not-a-string"),
        pytest.param(
            "{rules: [{from: [{source: {serviceAccounts: [foo/a], principals: [x/ns/y/sa/z]}}]}]}",
            id="serviceAccounts-with-principals",
        ),
        pytest.param(
            "{rules: [{from: [{source: {serviceAccounts: [foo/a], namespaces: [foo]}}]}]}",
            id="serviceAccounts-with-namespaces",
        ),
        pytest.param(
            "{rules: [{from: [{source: {serviceAccounts: ['foo/*']}}]}]}", id="sa-wildcard"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/foo/{*}.txt']}}]}]}", id="partial-operator"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/a/{**}/{*}']}}]}]}", id="operator-after-glob"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/a/*/{*}']}}]}]}", id="star-in-template"
        ),
        pytest.param("{rules: [{to: [{operation: {paths: ['/a/{x}']}}]}]}", id="unknown-operator"),
        pytest.param("{provider: {name: ext}, rules: [{}]}", id="provider-without-custom"),
        pytest.param(
            "{selector: {matchLabels: {app: a}}, targetRef: {group: gateway.networking.k8s.io,"
            " kind: Gateway, name: gw}, rules: [{}]}",
            id="selector-and-targetRef",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'destination.labels[app]', values: [a]}]}]}",
            id="destination.labels",
        ),
        pytest.param(
            "{rules: [{when: [{key: destination.namespace, values: [a]}]}]}",
            id="destination.namespace",
        ),
        pytest.param(
            "{rules: [{when: [{key: destination.name, values: [a]}]}]}", id="destination.name"
        ),
        pytest.param(
            "{rules: [{when: [{key: destination.user, values: [a]}]}]}", id="destination.user"
        ),
        pytest.param(
            "{action: CUSTOM, provider: {name: ext}, rules: [{from: [{source: {principals:"
            " [a/ns/b/sa/c]}}]}]}",
            id="custom-principals",
        ),
        pytest.param(
            "{action: CUSTOM, provider: {name: ext}, rules: [{from: [{source:"
            " {notRequestPrincipals: ['*']}}]}]}",
            id="custom-requestPrincipals",
        ),
        pytest.param(
            "{action: CUSTOM, provider: {name: ext}, rules: [{from: [{source: {namespaces:"
            " [a]}}]}]}",
            id="custom-namespaces",
        ),
        pytest.param(
            "{action: CUSTOM, provider: {name: ext}, rules: [{when: [{key: source.namespace,"
            " values: [a]}]}]}",
            id="custom-when-source.namespace",
        ),
        pytest.param(
            "{action: CUSTOM, provider: {name: ext}, rules: [{when: [{key:"
            " 'request.auth.claims[a]', values: [a]}]}]}",
            id="custom-when-claims",
        ),
    ],
)
def test_validation_rejects(spec: str) -> None:
    with pytest.raises(FindingsError):
        policy_set(ap(spec))


def test_targetrefs_at_most_16() -> None:
    refs = ", ".join(
        f"{{group: gateway.networking.k8s.io, kind: Gateway, name: g{i}}}" for i in range(17)
    )
    with pytest.raises(FindingsError):
        policy_set(ap(f"{{targetRefs: [{refs}], rules: [{{}}]}}"))


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(
            "{action: CUSTOM, provider: {name: ext},"
            " rules: [{when: [{key: source.ip, values: [10.0.0.0/8]},"
            " {key: 'request.headers[x]', values: [a]}, {key: destination.port, values:"
            " ['80']}]}]}",
            id="custom-allowed-keys",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'request.auth.claims[a][b]', values: [x]}]}]}",
            id="nested-claim-key",
        ),
        pytest.param("{rules: [{to: [{operation: {ports: ['8080']}}]}]}", id="port-string"),
        pytest.param(
            "{rules: [{from: [{source: {ipBlocks: ['2001:db8::/32', '::1']}}]}]}", id="ipv6"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/store/{**}/cart', '/a/{*}/b']}}]}]}",
            id="templates",
        ),
    ],
)
def test_validation_accepts(spec: str) -> None:
    policy_set(ap(spec))


# §1.4 Dry run --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_dry_run_true_spellings(value: str) -> None:
    text = ap(DENY_ALL, annotations=f"{{istio.io/dry-run: '{value}'}}")
    decision = decide(policy_set(text), request())
    assert decision.allowed
    assert decision.shadow_deny is not None and not decision.shadow_deny.allowed


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False"])
def test_dry_run_false_spellings(value: str) -> None:
    text = ap(DENY_ALL, annotations=f"{{istio.io/dry-run: '{value}'}}")
    assert not _allowed(text, request())


def test_dry_run_unparsable_is_rejected_and_enforced_when_lenient() -> None:
    text = ap(DENY_ALL, annotations="{istio.io/dry-run: 'yes'}")
    with pytest.raises(FindingsError):
        policy_set(text)
    assert not decide(policy_set(text, strict=False), request()).allowed


@pytest.mark.parametrize(
    "spec", ["{action: AUDIT, rules: [{}]}", "{action: CUSTOM, provider: {name: e}, rules: [{}]}"]
)
def test_dry_run_only_on_allow_and_deny(spec: str) -> None:
    with pytest.raises(FindingsError):
        policy_set(ap(spec, annotations="{istio.io/dry-run: 'true'}"))


def test_only_dry_run_allow_means_default_allow() -> None:
    text = ap(
        "{rules: [{to: [{operation: {paths: [/x]}}]}]}", annotations="{istio.io/dry-run: 'true'}"
    )
    decision = decide(policy_set(text), request(path="/"))
    assert decision.allowed and decision.reason == "no_allow_policy"
    assert decision.shadow_allow is not None and not decision.shadow_allow.allowed


def test_dry_run_allow_and_deny_give_separate_shadow_results() -> None:
    dry = "{istio.io/dry-run: 'true'}"
    text = ap(DENY_ALL, name="d", annotations=dry) + ap("{rules: [{}]}", name="a", annotations=dry)
    decision = decide(policy_set(text), request())
    assert decision.allowed
    assert decision.shadow_deny is not None and decision.shadow_deny.match is not None
    assert decision.shadow_deny.match.policy == "foo/d" and not decision.shadow_deny.allowed
    assert decision.shadow_allow is not None and decision.shadow_allow.allowed
    assert decision.shadow_allow.match is not None and decision.shadow_allow.match.policy == "foo/a"


# §2 Rule algebra -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "attrs", "allowed"),
    [
        pytest.param(
            "{rules: [{to: [{operation: {methods: [GET, POST]}}]}]}",
            {"method": "POST"},
            True,
            id="values-ored",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {methods: [GET], paths: [/a]}}]}]}",
            {"method": "GET", "path": "/b"},
            False,
            id="fields-anded",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {methods: [POST]}}, {operation: {paths: [/b]}}]}]}",
            {"method": "GET", "path": "/b"},
            True,
            id="to-entries-ored",
        ),
        pytest.param(
            "{rules: [{from: [{source: {ipBlocks: [1.1.1.1]}}, {source: {ipBlocks:"
            " [10.0.0.0/8]}}]}]}",
            {},
            True,
            id="from-entries-ored",
        ),
        pytest.param(
            "{rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}], to: [{operation: {paths:"
            " [/x]}}]}]}",
            {"path": "/"},
            False,
            id="from-and-to-anded",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'request.headers[a]', values: ['1']}, {key:"
            " 'request.headers[b]', values: ['2']}]}]}",
            {"headers": {"a": "1"}},
            False,
            id="when-anded",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/api/*'], notPaths: [/api/admin]}}]}]}",
            {"path": "/api/admin"},
            False,
            id="positive-and-negative-both-hold-fail",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {paths: ['/api/*'], notPaths: [/api/admin]}}]}]}",
            {"path": "/api/users"},
            True,
            id="positive-and-negative-both-hold",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'request.headers[v]', values: ['a*'], notValues: [ab]}]}]}",
            {"headers": {"v": "ab"}},
            False,
            id="condition-values-and-notvalues",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {notMethods: [GET, POST]}}]}]}",
            {"method": "POST"},
            False,
            id="negative-values-nored",
        ),
    ],
)
def test_rule_algebra(spec: str, attrs: dict[str, Any], allowed: bool) -> None:
    assert _allowed(ap(spec), request(**attrs)) is allowed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_from("{notPrincipals: [cluster.local/ns/foo/sa/sleep]}"), id="notPrincipals"),
        pytest.param(_from("{notPrincipals: ['*']}"), id="notPrincipals-star"),
        pytest.param(_from("{notNamespaces: [foo]}"), id="notNamespaces"),
        pytest.param(_from("{notServiceAccounts: [foo/sleep]}"), id="notServiceAccounts"),
        pytest.param(_from("{notRequestPrincipals: ['*']}"), id="notRequestPrincipals"),
        pytest.param(_from("{notIpBlocks: [10.0.0.0/8]}"), id="notIpBlocks-no-peer"),
        pytest.param(_when("request.headers[x-user]", not_values="[admin]"), id="notValues-header"),
        pytest.param(
            _when("request.auth.claims[groups]", not_values="[admin]"), id="notValues-claim"
        ),
        pytest.param(
            _when("request.auth.principal", not_values="['*']"), id="notValues-auth-principal"
        ),
        pytest.param(_when("request.auth.audiences", not_values="[a]"), id="notValues-audiences"),
        pytest.param(_when("request.auth.presenter", not_values="[a]"), id="notValues-presenter"),
        pytest.param(
            _when("source.principal", not_values="['*']"), id="notValues-source.principal"
        ),
        pytest.param(
            _when("source.namespace", not_values="[foo]"), id="notValues-source.namespace"
        ),
        pytest.param(_when("connection.sni", not_values="['*']"), id="notValues-sni"),
    ],
)
def test_negative_fields_match_absent_attributes(text: str) -> None:
    """§2 / §9.1: plaintext peer, no JWT, missing header or claim — every not* matches."""
    assert _allowed(text, request(principal="", source_ip=None))


# §3.1 Source fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "principal", "matches"),
    [
        pytest.param("{principals: [cluster.local/ns/foo/sa/sleep]}", SLEEP, True, id="exact"),
        pytest.param(
            "{principals: [cluster.local/ns/foo/sa/sleep]}",
            SLEEP + "-v2",
            False,
            id="exact-not-prefix",
        ),
        pytest.param(
            "{principals: ['spiffe://cluster.local/ns/foo/sa/sleep']}",
            SLEEP,
            False,
            id="spiffe-scheme-never",
        ),
        pytest.param("{principals: ['*/sa/sleep']}", SLEEP, True, id="suffix"),
        pytest.param(
            "{principals: ['*/sa/sleep']}",
            "x://cluster.local/ns/foo/sa/sleep",
            False,
            id="suffix-needs-spiffe",
        ),
        pytest.param("{principals: ['cluster.local/ns/foo/*']}", SLEEP, True, id="prefix"),
        pytest.param(
            "{principals: ['cluster.local/ns/bar/*']}", SLEEP, False, id="prefix-mismatch"
        ),
        pytest.param("{principals: ['*']}", SLEEP, True, id="star-present"),
        pytest.param("{principals: ['*']}", "", False, id="star-plaintext"),
        pytest.param(
            "{principals: ['cluster.local/ns/*/sa/sleep']}", SLEEP, False, id="middle-star-literal"
        ),
        pytest.param("{namespaces: [foo]}", SLEEP, True, id="namespace"),
        pytest.param(
            "{namespaces: [foo]}",
            "spiffe://cluster.local/ns/foo-bar/sa/x",
            False,
            id="namespace-not-prefix",
        ),
        pytest.param(
            "{namespaces: ['team-*']}",
            "spiffe://cluster.local/ns/team-a/sa/x",
            True,
            id="namespace-wildcard",
        ),
        pytest.param(
            "{namespaces: ['*-a']}",
            "spiffe://cluster.local/ns/team-a/sa/x",
            True,
            id="namespace-leading-wildcard",
        ),
        pytest.param(
            "{namespaces: ['t*m-a']}",
            "spiffe://cluster.local/ns/team-a/sa/x",
            True,
            id="namespace-middle-wildcard",
        ),
        pytest.param(
            "{namespaces: [foo]}",
            "spiffe://cluster.local/foo/sa/x",
            False,
            id="namespace-needs-ns-segment",
        ),
        pytest.param("{namespaces: ['*']}", "", False, id="namespace-star-plaintext"),
        pytest.param("{serviceAccounts: [foo/sleep]}", SLEEP, True, id="sa-ns-sa"),
        pytest.param("{serviceAccounts: [sleep]}", SLEEP, True, id="sa-policy-namespace"),
        pytest.param(
            "{serviceAccounts: [sleep]}",
            "spiffe://cluster.local/ns/bar/sa/sleep",
            False,
            id="sa-other-namespace",
        ),
        pytest.param("{serviceAccounts: [foo/sleep]}", SLEEP + "-v2", False, id="sa-anchored"),
        pytest.param(
            "{serviceAccounts: [foo/sleep]}",
            "spiffe://td/ns/foo/x/sa/sleep/y",
            True,
            id="sa-extra-segments",
        ),
    ],
)
def test_identity_sources(source: str, principal: str, matches: bool) -> None:
    assert _allowed(_from(source), request(principal=principal)) is matches


def test_trust_domain_aliases_expand_cluster_local() -> None:
    text = _from("{principals: [cluster.local/ns/foo/sa/sleep]}")
    options: dict[str, Any] = {
        "trust_domain": "corp.example",
        "trust_domain_aliases": ("old.example",),
    }
    ps = policy_set(text, **options)
    for td in ("corp.example", "old.example"):
        assert decide(ps, request(principal=f"spiffe://{td}/ns/foo/sa/sleep")).allowed
    assert not decide(ps, request(principal="spiffe://evil.example/ns/foo/sa/sleep")).allowed
    wildcard = policy_set(_from("{principals: ['*/ns/foo/sa/sleep']}"), **options)
    assert decide(wildcard, request(principal="spiffe://evil.example/ns/foo/sa/sleep")).allowed


@pytest.mark.parametrize(
    ("source", "attrs", "matches"),
    [
        pytest.param("{ipBlocks: [10.0.0.1]}", {}, True, id="ip-host"),
        pytest.param("{ipBlocks: [10.0.0.0/24]}", {}, True, id="cidr"),
        pytest.param("{ipBlocks: [10.0.1.0/24]}", {}, False, id="cidr-miss"),
        pytest.param(
            "{ipBlocks: ['2001:db8::/32']}", {"source_ip": "2001:db8::7"}, True, id="ipv6-cidr"
        ),
        pytest.param(
            "{ipBlocks: ['2001:db8::7']}", {"source_ip": "2001:db8::7"}, True, id="ipv6-host"
        ),
        pytest.param(
            "{ipBlocks: ['::ffff:10.0.0.0/104']}",
            {"source_ip": "10.0.0.1"},
            False,
            id="v4-never-v6",
        ),
        pytest.param("{ipBlocks: [0.0.0.0/0]}", {"source_ip": "::1"}, False, id="v6-never-v4"),
        pytest.param(
            "{ipBlocks: [10.0.0.0/8]}", {"remote_ip": "192.0.2.1"}, True, id="ipBlocks-uses-peer"
        ),
        pytest.param(
            "{remoteIpBlocks: [10.0.0.0/8]}",
            {"remote_ip": "192.0.2.1"},
            False,
            id="remote-uses-computed",
        ),
        pytest.param(
            "{remoteIpBlocks: [192.0.2.0/24]}", {"remote_ip": "192.0.2.1"}, True, id="remote-match"
        ),
        pytest.param(
            "{notRemoteIpBlocks: [192.0.2.0/24]}", {"remote_ip": "192.0.2.1"}, False, id="notRemote"
        ),
    ],
)
def test_ip_sources(source: str, attrs: dict[str, Any], matches: bool) -> None:
    assert _allowed(_from(source), request(**attrs)) is matches


# §3.2 / §4.5 / §4.6 Operation fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "attrs", "matches"),
    [
        pytest.param("{hosts: [example.com]}", {"host": "example.com"}, True, id="host-exact"),
        pytest.param(
            "{hosts: [example.com]}", {"host": "EXAMPLE.com"}, True, id="host-case-insensitive"
        ),
        pytest.param(
            "{hosts: [Example.COM]}", {"host": "example.com"}, True, id="host-policy-case"
        ),
        pytest.param(
            "{hosts: [example.com]}",
            {"host": "example.com:8080"},
            False,
            id="host-port-not-matched",
        ),
        pytest.param(
            "{hosts: ['example.com:*']}", {"host": "example.com:8080"}, True, id="host-port-prefix"
        ),
        pytest.param(
            "{hosts: ['example.com:8080']}", {"host": "Example.com:8080"}, True, id="host-with-port"
        ),
        pytest.param(
            "{hosts: ['*.example.com']}", {"host": "a.example.com"}, True, id="host-suffix"
        ),
        pytest.param(
            "{hosts: ['*.example.com']}", {"host": "example.com"}, False, id="host-suffix-not-apex"
        ),
        pytest.param("{hosts: ['*']}", {"host": "x"}, True, id="host-star"),
        pytest.param(
            "{notHosts: [EXAMPLE.com]}", {"host": "example.com"}, False, id="nothost-case"
        ),
        pytest.param("{ports: ['8080']}", {"port": 8080}, True, id="port"),
        pytest.param("{ports: ['80']}", {"port": 8080}, False, id="port-exact"),
        pytest.param("{notPorts: ['8080']}", {"port": 9090}, True, id="notport"),
        pytest.param("{methods: [GET]}", {"method": "GET"}, True, id="method"),
        pytest.param("{methods: [get]}", {"method": "GET"}, False, id="method-case-sensitive"),
        pytest.param("{methods: ['P*']}", {"method": "PUT"}, True, id="method-prefix"),
        pytest.param("{methods: ['*']}", {"method": "GET"}, True, id="method-star"),
        pytest.param("{paths: [/a]}", {"path": "/a?x=1"}, True, id="path-ignores-query"),
        pytest.param("{paths: [/a]}", {"path": "/a#frag"}, True, id="path-ignores-fragment"),
        pytest.param("{paths: [/A]}", {"path": "/a"}, False, id="path-case-sensitive"),
        pytest.param(
            "{paths: ['/info*']}", {"path": "/information"}, True, id="path-prefix-not-segment"
        ),
        pytest.param(
            "{paths: ['*.png']}", {"path": "/img/x.png?v=2"}, True, id="path-suffix-before-query"
        ),
        pytest.param("{paths: ['*']}", {"path": "/"}, True, id="path-star"),
        pytest.param(
            "{paths: ['/a/*/c']}", {"path": "/a/b/c"}, False, id="path-middle-star-literal"
        ),
        pytest.param(
            "{paths: ['/a/*/c']}", {"path": "/a/*/c"}, True, id="path-middle-star-is-char"
        ),
        pytest.param("{paths: [/x]}", {"path": "/x?a=/y"}, True, id="path-query-with-slash"),
        pytest.param("{notPaths: [/admin]}", {"path": "/admin?x"}, False, id="notpath-query"),
    ],
)
def test_operations(operation: str, attrs: dict[str, Any], matches: bool) -> None:
    assert _allowed(_to(operation), request(**attrs)) is matches


@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("/a/{*}/c", "/a/b/c", True),
        ("/a/{*}/c", "/a//c", False),
        ("/a/{*}/c", "/a/b/x/c", False),
        ("/a/{*}", "/a/b?q=1", True),
        ("/a/{*}", "/a/", False),
        ("/a/{*}", "/a/b/", False),
        ("/{*}", "/x", True),
        ("/allow/admin/{**}", "/allow/admin/", True),
        ("/allow/admin/{**}", "/allow/admin/x/y", True),
        ("/allow/admin/{**}", "/allow/admin", False),
        ("/store/{**}/cart", "/store//cart", True),
        ("/store/{**}/cart", "/store/a/b/cart", True),
        ("/store/{**}/cart", "/store/cart", False),
        ("/{*}/{*}/{**}", "/a/b/c/d", True),
        ("/{*}/{*}/{**}", "/a/b", False),
        ("/a/{*}/c", "/A/b/c", False),
        ("/a/{**}", "/b/a/x", False),
    ],
)
def test_path_templates(template: str, path: str, matches: bool) -> None:
    assert _allowed(_to(f"{{paths: ['{template}']}}"), request(path=path)) is matches


# §3.3 / §4.7 / §4.8 when keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "values", "attrs", "claims", "matches"),
    [
        pytest.param(
            "request.headers[X-User]",
            "[alice]",
            {"headers": {"x-user": "alice"}},
            None,
            True,
            id="header-name-case",
        ),
        pytest.param(
            "request.headers[x-user]",
            "[Alice]",
            {"headers": {"x-user": "alice"}},
            None,
            False,
            id="header-value-case",
        ),
        pytest.param(
            "request.headers[x-user]",
            "['*']",
            {"headers": {"x-user": ""}},
            None,
            True,
            id="header-star-empty",
        ),
        pytest.param("request.headers[x-user]", "['*']", {}, None, False, id="header-missing"),
        pytest.param(
            "request.headers[x-user]",
            "['al*']",
            {"headers": {"x-user": "alice"}},
            None,
            True,
            id="header-prefix",
        ),
        pytest.param(
            "request.headers[x-user]",
            "['*ce']",
            {"headers": {"x-user": "alice"}},
            None,
            True,
            id="header-suffix",
        ),
        pytest.param(
            "request.headers[x-a]",
            "['1,2']",
            {"headers": {"x-a": "1,2"}},
            None,
            True,
            id="header-dups-joined",
        ),
        pytest.param(
            "request.headers[x-a]",
            "[' 1']",
            {"headers": {"x-a": "1"}},
            None,
            False,
            id="header-no-trim",
        ),
        pytest.param("request.headers[:method]", "[GET]", {}, None, True, id="pseudo-method"),
        pytest.param(
            "request.headers[:path]",
            "[/a?x=1]",
            {"path": "/a?x=1"},
            None,
            True,
            id="pseudo-path-with-query",
        ),
        pytest.param(
            "request.headers[:path]",
            "[/a]",
            {"path": "/a?x=1"},
            None,
            False,
            id="pseudo-path-keeps-query",
        ),
        pytest.param(
            "request.headers[:authority]", "[example.com]", {}, None, True, id="pseudo-authority"
        ),
        pytest.param(
            "source.ip", "[10.0.0.0/8]", {"remote_ip": "192.0.2.1"}, None, True, id="source.ip-peer"
        ),
        pytest.param(
            "remote.ip",
            "[10.0.0.0/8]",
            {"remote_ip": "192.0.2.1"},
            None,
            False,
            id="remote.ip-computed",
        ),
        pytest.param(
            "remote.ip",
            "['2001:db8::/32']",
            {"remote_ip": "2001:db8::1"},
            None,
            True,
            id="remote.ip-v6",
        ),
        pytest.param(
            "source.namespace",
            "[foo]",
            {"principal": SLEEP},
            None,
            True,
            id="source.namespace-from-uri",
        ),
        pytest.param(
            "source.namespace",
            "[fo]",
            {"principal": SLEEP},
            None,
            False,
            id="source.namespace-whole",
        ),
        pytest.param(
            "source.namespace",
            "['f*']",
            {"principal": SLEEP},
            None,
            True,
            id="source.namespace-wild",
        ),
        pytest.param(
            "source.principal",
            "[cluster.local/ns/foo/sa/sleep]",
            {"principal": SLEEP},
            None,
            True,
            id="source.principal",
        ),
        pytest.param(
            "source.principal",
            "['*/sa/sleep']",
            {"principal": SLEEP},
            None,
            True,
            id="source.principal-suffix",
        ),
        pytest.param(
            "source.serviceAccount",
            "[foo/sleep]",
            {"principal": SLEEP},
            None,
            True,
            id="source.serviceAccount",
        ),
        pytest.param("destination.ip", "[10.0.0.0/24]", {}, None, True, id="destination.ip"),
        pytest.param("destination.port", "['8080']", {}, None, True, id="destination.port"),
        pytest.param("destination.port", "['80']", {}, None, False, id="destination.port-exact"),
        pytest.param("connection.sni", "['*.local']", {"sni": "a.local"}, None, True, id="sni"),
        pytest.param("connection.sni", "['*']", {}, None, False, id="sni-absent"),
        pytest.param(
            "request.auth.principal",
            f"['{ISSUER}/alice']",
            {},
            {"iss": ISSUER, "sub": "alice"},
            True,
            id="auth.principal",
        ),
        pytest.param(
            "request.auth.principal", "['*']", {}, None, False, id="auth.principal-no-jwt"
        ),
        pytest.param("request.auth.audiences", "[api]", {}, {"aud": "api"}, True, id="aud-string"),
        pytest.param(
            "request.auth.audiences", "[api]", {}, {"aud": ["web", "api"]}, True, id="aud-list"
        ),
        pytest.param("request.auth.audiences", "[api]", {}, {"aud": ["web"]}, False, id="aud-miss"),
        pytest.param("request.auth.presenter", "[cli]", {}, {"azp": "cli"}, True, id="azp"),
        pytest.param("request.auth.presenter", "['c*']", {}, {"azp": ["cli"]}, True, id="azp-list"),
        pytest.param(
            "request.auth.claims[groups]",
            "[admin]",
            {},
            {"groups": ["dev", "admin"]},
            True,
            id="claim-list",
        ),
        pytest.param(
            "request.auth.claims[groups]",
            "[admin]",
            {},
            {"groups": "admin"},
            True,
            id="claim-string",
        ),
        pytest.param(
            "request.auth.claims[groups]",
            "[Admin]",
            {},
            {"groups": "admin"},
            False,
            id="claim-case",
        ),
        pytest.param(
            "request.auth.claims[admin]",
            "['true']",
            {},
            {"admin": True},
            False,
            id="claim-bool-never",
        ),
        pytest.param(
            "request.auth.claims[n]", "['1']", {}, {"n": 1}, False, id="claim-number-never"
        ),
        pytest.param(
            "request.auth.claims[l]",
            "['1']",
            {},
            {"l": [1, "2"]},
            False,
            id="claim-list-number-element",
        ),
        pytest.param(
            "request.auth.claims[o]", "['*']", {}, {"o": {"a": "b"}}, False, id="claim-object-never"
        ),
        pytest.param(
            "request.auth.claims[a][b]", "[x]", {}, {"a": {"b": "x"}}, True, id="claim-nested"
        ),
        pytest.param(
            "request.auth.claims[a][b][c]",
            "[x]",
            {},
            {"a": {"b": {"c": ["y", "x"]}}},
            True,
            id="claim-nested-3-list",
        ),
        pytest.param(
            "request.auth.claims[a][b]",
            "[x]",
            {},
            {"a": {"c": "x"}},
            False,
            id="claim-nested-missing",
        ),
        pytest.param(
            "request.auth.claims[a][b]", "[x]", {}, {"a": "x"}, False, id="claim-nested-not-object"
        ),
        pytest.param(
            "request.auth.claims[a.b]", "[x]", {}, {"a.b": "x"}, True, id="claim-dotted-name"
        ),
        pytest.param(
            "request.auth.claims[a.b]",
            "[x]",
            {},
            {"a": {"b": "x"}},
            False,
            id="claim-dot-not-nesting",
        ),
        pytest.param(
            "request.auth.claims[https://ex.com/role]",
            "[x]",
            {},
            {"https://ex.com/role": "x"},
            True,
            id="claim-url-name",
        ),
        pytest.param("request.auth.claims[groups]", "['*']", {}, None, False, id="claim-no-jwt"),
        pytest.param(
            "request.auth.claims[scope]",
            "[write]",
            {},
            {"scope": ["read", "write"]},
            True,
            id="claim-scope-split",
        ),
    ],
)
def test_conditions(
    key: str, values: str, attrs: dict[str, Any], claims: dict[str, Any] | None, matches: bool
) -> None:
    assert _allowed(_when(key, values), request(**attrs), claims) is matches


# §4.4 Request principals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "iss", "sub", "matches"),
    [
        ("*", "i", "s", True),
        ("*", "i", "", False),
        ("*", "", "s", False),
        ("iss/sub", "iss", "sub", True),
        ("iss/sub", "iss", "sub2", False),
        ("iss/*", "iss", "x", True),
        ("iss/*", "iss", "", False),
        ("iss/*", "other", "x", False),
        ("iss/al*", "iss", "alice", True),
        ("iss/al*", "iss", "bob", False),
        ("*/sub", "anything", "sub", True),
        ("*/sub", "", "sub", False),
        ("*ss/sub", "iss", "sub", True),
        ("*ss/sub", "isx", "sub", False),
        ("is*", "iss", "x", True),
        ("is*", "iss", "", False),
        ("is*", "xss", "x", False),
        ("*ce", "iss", "alice", True),
        ("*ce", "", "alice", False),
        ("*ce", "iss", "bob", False),
        ("https://accounts.example.com/u-42", "https://accounts.example.com", "u-42", True),
        ("https://accounts.example.com/*", "https://accounts.example.com", "u-42", True),
        ("https://a.example.com/*", "https://b.example.com", "u-42", False),
    ],
)
def test_request_principals(value: str, iss: str, sub: str, matches: bool) -> None:
    claims = {k: v for k, v in (("iss", iss), ("sub", sub)) if v}
    for text in (
        _from(f"{{requestPrincipals: ['{value}']}}"),
        _when("request.auth.principal", f"['{value}']"),
    ):
        assert _allowed(text, request(), claims) is matches


def test_request_principal_requires_string_iss_and_sub() -> None:
    text = _from("{requestPrincipals: ['*']}")
    assert not _allowed(text, request(), {"iss": ISSUER, "sub": 42})
    assert not _allowed(text, request(), {"iss": ISSUER})


# §5 HTTP-only fields on TCP ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        pytest.param(
            "{rules: [{to: [{operation: {methods: [GET]}}]}]}", False, id="allow-http-rule-dropped"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {ports: ['8080'], methods: [GET]}}]}]}",
            False,
            id="allow-mixed-rule-dropped",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {ports: ['8080']}}, {operation: {paths: [/a]}}]}]}",
            False,
            id="allow-dropped-even-if-other-to-tcp",
        ),
        pytest.param(
            "{rules: [{to: [{operation: {ports: ['8080']}}]}]}", True, id="allow-tcp-rule-kept"
        ),
        pytest.param(
            "{rules: [{to: [{operation: {methods: [GET]}}]}, {from: [{source: {ipBlocks:"
            " [10.0.0.1]}}]}]}",
            True,
            id="allow-other-rule-kept",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'request.headers[x]', values: [a]}]}]}",
            False,
            id="allow-header-when-dropped",
        ),
        pytest.param(
            "{rules: [{when: [{key: 'request.auth.claims[x]', values: [a]}]}]}",
            False,
            id="allow-claims-when-dropped",
        ),
        pytest.param(
            "{rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}",
            False,
            id="allow-requestPrincipals-dropped",
        ),
        pytest.param(
            "{rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}",
            False,
            id="allow-notRequestPrincipals-dropped",
        ),
        pytest.param(
            "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}",
            False,
            id="deny-notRequestPrincipals-denies-all",
        ),
        pytest.param(
            "{action: DENY, rules: [{to: [{operation: {methods: [POST], ports: ['8080']}}]}]}",
            False,
            id="deny-keeps-port",
        ),
        pytest.param(
            "{action: DENY, rules: [{to: [{operation: {methods: [POST], ports: ['9000']}}]}]}",
            True,
            id="deny-other-port",
        ),
        pytest.param(
            "{action: DENY, rules: [{when: [{key: 'request.headers[x]', values: [a]}]}]}",
            False,
            id="deny-when-removed",
        ),
        pytest.param(
            "{action: DENY, rules: [{to: [{operation: {hosts: [x]}}], from: [{source: {ipBlocks:"
            " [1.1.1.1]}}]}]}",
            True,
            id="deny-remaining-evaluated",
        ),
        pytest.param(
            "{action: AUDIT, rules: [{to: [{operation: {methods: [POST]}}]}]}",
            True,
            id="audit-never-denies",
        ),
    ],
)
def test_tcp(spec: str, allowed: bool) -> None:
    assert _allowed(ap(spec), request(tcp=True)) is allowed


def test_tcp_audit_loses_only_http_keys() -> None:
    decision = decide(
        policy_set(ap("{action: AUDIT, rules: [{to: [{operation: {methods: [POST]}}]}]}")),
        request(tcp=True),
    )
    assert [m.policy for m in decision.audit] == ["foo/p"]


# §7 RequestAuthentication ------------------------------------------------------------------


def ra(rules: str, *, name: str = "r", namespace: str = "foo", selector: str = "") -> str:
    """A RequestAuthentication; ``rules`` are block-style jwtRules lines (``- issuer: ...``)."""
    sel = f"  selector: {{matchLabels: {selector}}}\n" if selector else ""
    body = "".join(f"  {line}\n" for line in rules.strip("\n").splitlines())
    return (
        "---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{sel}  jwtRules:\n{body}"
    )


def rule(issuer: str = ISSUER, signer: Signer = RSA, extra: str = "") -> str:
    return f"- issuer: {issuer}\n  jwks: '{signer.jwks}'\n" + "".join(
        f"  {line}\n" for line in extra.strip("\n").splitlines()
    )


async def _no_remote(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
    return None


async def _check(text: str, attrs: RequestAttributes) -> Outcome:
    policies = policy_set(text)
    return await Authorizer(lambda: policies, Authenticator(_no_remote)).check(attrs)


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


ALLOW_ALL = ap("{rules: [{}]}", name="allow")
REQUIRE_JWT = ap("{rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}", name="jwt")


@pytest.mark.parametrize(
    ("policy", "headers", "status"),
    [
        pytest.param(ALLOW_ALL, _bearer("garbage"), 401, id="malformed-under-allow-all"),
        pytest.param(ap(DENY_ALL), _bearer("a.b.c"), 401, id="malformed-under-deny-all"),
        pytest.param("", _bearer("a.b.c"), 401, id="malformed-no-policy"),
        pytest.param("", _bearer(RSA.token(exp=int(time.time()) - 120)), 401, id="expired"),
        pytest.param("", _bearer(RSA.token(nbf=int(time.time()) + 120)), 401, id="not-yet-valid"),
        pytest.param("", _bearer(RSA.token(exp=int(time.time()) - 30)), 200, id="exp-within-skew"),
        pytest.param("", _bearer(RSA.token(nbf=int(time.time()) + 30)), 200, id="nbf-within-skew"),
        pytest.param("", _bearer(RSA.token(exp=None)), 200, id="exp-not-required"),
        pytest.param("", _bearer(OTHER.token()), 401, id="bad-signature-or-kid"),
        pytest.param(
            "", _bearer(RSA.token(iss="https://evil.example.com")), 401, id="unknown-issuer"
        ),
        pytest.param("", _bearer(RSA.token(headers={"kid": "nope"})), 401, id="unknown-kid"),
        pytest.param("", {}, 200, id="no-token-continues"),
        pytest.param(REQUIRE_JWT, {}, 403, id="no-token-policy-denies"),
        pytest.param(REQUIRE_JWT, _bearer(RSA.token()), 200, id="valid-token-identity"),
        pytest.param(
            REQUIRE_JWT, {"authorization": f"bearer {RSA.token()}"}, 403, id="prefix-case-sensitive"
        ),
        pytest.param(
            REQUIRE_JWT, {"x-token": RSA.token()}, 403, id="unconfigured-location-ignored"
        ),
    ],
)
async def test_jwt_outcomes(policy: str, headers: dict[str, str], status: int) -> None:
    outcome = await _check(ra(rule()) + policy, request(headers=headers))
    assert outcome.status == status, outcome


async def test_invalid_token_401_carries_www_authenticate_and_envoy_message() -> None:
    outcome = await _check(
        ra(rule()), request(headers=_bearer(RSA.token(exp=int(time.time()) - 300)))
    )
    assert outcome.status == 401 and outcome.body == "Jwt is expired"
    assert dict(outcome.response_headers)["www-authenticate"].endswith('error="invalid_token"')


async def test_unknown_issuer_message() -> None:
    outcome = await _check(ra(rule()), request(headers=_bearer(RSA.token(iss="https://x"))))
    assert (outcome.status, outcome.body) == (401, "Jwt issuer is not configured")


@pytest.mark.parametrize(
    ("alg", "signer", "status"),
    [
        pytest.param("RS256", RSA, 200, id="RS256"),
        pytest.param("RS384", RSA, 200, id="RS384"),
        pytest.param("RS512", RSA, 200, id="RS512"),
        pytest.param("PS256", RSA, 200, id="PS256"),
        pytest.param("PS512", RSA, 200, id="PS512"),
        pytest.param("ES256", Signer("EC", kid="e"), 200, id="ES256"),
        pytest.param("EdDSA", Signer("OKP", kid="o"), 200, id="EdDSA"),
        pytest.param("HS256", Signer("oct", kid="h"), 200, id="HS256"),
    ],
)
async def test_supported_algorithms(alg: str, signer: Signer, status: int) -> None:
    outcome = await _check(
        ra(rule(signer=signer)) + REQUIRE_JWT, request(headers=_bearer(signer.token(alg=alg)))
    )
    assert outcome.status == status


def _unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def enc(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{enc(header)}.{enc(payload)}.sig"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_unsigned({"iss": ISSUER, "sub": "x"}, {"alg": "none"}), id="alg-none"),
        pytest.param(
            _unsigned({"iss": ISSUER, "sub": "x"}, {"alg": "none", "kid": "k1"}) + "",
            id="alg-none-kid",
        ),
        pytest.param(
            _unsigned({"iss": ISSUER, "sub": "x"}, {"alg": "HS256", "kid": "k1"}),
            id="hs256-with-rsa-key",
        ),
        pytest.param(
            _unsigned({"iss": ISSUER, "sub": "x"}, {"alg": "RS1", "kid": "k1"}), id="unknown-alg"
        ),
    ],
)
async def test_alg_restrictions(token: str) -> None:
    outcome = await _check(ra(rule()), request(headers=_bearer(token)))
    assert outcome.status == 401


async def test_hmac_confusion_with_public_key_is_rejected() -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization

    pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _hmac_token(pem, {"iss": ISSUER, "sub": "x"})
    assert jwt.get_unverified_header(forged)["alg"] == "HS256"
    outcome = await _check(ra(rule()), request(headers=_bearer(forged)))
    assert outcome.status == 401


def _hmac_token(secret: bytes, payload: dict[str, Any]) -> str:
    import hashlib
    import hmac

    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    sig = hmac.new(secret, head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()


@pytest.mark.parametrize(
    ("audiences", "aud", "status"),
    [
        pytest.param("", None, 200, id="no-audiences-not-checked"),
        pytest.param("", "anything", 200, id="no-audiences-any"),
        pytest.param("[api]", "api", 200, id="aud-string"),
        pytest.param("[api]", ["web", "api"], 200, id="aud-list"),
        pytest.param("[api]", "web", 403, id="aud-mismatch-403"),
        pytest.param("[api]", None, 403, id="aud-missing-403"),
        pytest.param("[api, web]", ["web"], 200, id="any-of-audiences"),
        pytest.param("['https://api.example.com/']", "api.example.com", 200, id="aud-scheme-slash"),
        pytest.param("[api.example.com]", "http://api.example.com/", 200, id="aud-token-scheme"),
        pytest.param("['https://api.example.com']", "api.example.com/x", 403, id="aud-path-kept"),
        pytest.param("[API]", "api", 403, id="aud-case-sensitive"),
    ],
)
async def test_audiences(audiences: str, aud: Any, status: int) -> None:
    # jwt_authn ignores an http(s):// scheme and a trailing slash on either side.
    extra = f"audiences: {audiences}" if audiences else ""
    outcome = await _check(ra(rule(extra=extra)), request(headers=_bearer(RSA.token(aud=aud))))
    assert outcome.status == status
    if status == 403:
        assert outcome.body == "Audiences in Jwt are not allowed"


async def test_same_issuer_permissive_rule_wins() -> None:
    text = ra(rule(extra="audiences: [api]") + rule(), name="r")
    outcome = await _check(text + REQUIRE_JWT, request(headers=_bearer(RSA.token(aud="web"))))
    assert outcome.status == 200


async def test_same_issuer_across_two_request_authentications() -> None:
    text = ra(rule(extra="audiences: [api]"), name="a") + ra(rule(), name="b")
    outcome = await _check(text + REQUIRE_JWT, request(headers=_bearer(RSA.token(aud="web"))))
    assert outcome.status == 200


@pytest.mark.parametrize("issuer_signer", [(ISSUER, RSA), (OTHER_ISSUER, OTHER)])
async def test_multiple_issuers(issuer_signer: tuple[str, Signer]) -> None:
    issuer, signer = issuer_signer
    text = ra(rule() + rule(OTHER_ISSUER, OTHER)) + ap(
        f"{{rules: [{{from: [{{source: {{requestPrincipals: ['{issuer}/alice']}}}}]}}]}}", name="x"
    )
    outcome = await _check(text, request(headers=_bearer(signer.token(iss=issuer))))
    assert outcome.status == 200


async def test_multiple_request_authentications_merge_issuers() -> None:
    text = (
        ra(rule(), name="a")
        + ra(rule(OTHER_ISSUER, OTHER), name="b", namespace="istio-system")
        + REQUIRE_JWT
    )
    for signer, issuer in ((RSA, ISSUER), (OTHER, OTHER_ISSUER)):
        outcome = await _check(text, request(headers=_bearer(signer.token(iss=issuer))))
        assert outcome.status == 200


async def test_issuer_signed_by_other_issuers_key_is_rejected() -> None:
    text = ra(rule() + rule(OTHER_ISSUER, OTHER))
    outcome = await _check(
        text, request(headers=_bearer(OTHER.token(iss=ISSUER, headers={"kid": "k1"})))
    )
    assert outcome.status == 401


async def test_request_authentication_scoping() -> None:
    other_ns = ra(rule(), namespace="bar")
    garbage = request(headers=_bearer("garbage"))
    assert (await _check(other_ns, garbage)).status == 200
    selected = ra(rule(), selector="{app: other}")
    assert (await _check(selected, garbage)).status == 200
    assert (await _check(ra(rule(), selector="{app: a}"), garbage)).status == 401


async def test_no_request_authentication_means_no_identity_and_no_validation() -> None:
    outcome = await _check(REQUIRE_JWT, request(headers=_bearer(RSA.token())))
    assert outcome.status == 403
    outcome = await _check(ALLOW_ALL, request(headers=_bearer("garbage")))
    assert outcome.status == 200


@pytest.mark.parametrize(
    ("extra", "headers", "path", "found"),
    [
        pytest.param("", {}, "/?access_token={t}", True, id="default-param"),
        pytest.param("", {"authorization": "Bearer {t}"}, "/", True, id="default-header"),
        pytest.param(
            "fromHeaders: [{name: x-jwt}]", {"x-jwt": "{t}"}, "/", True, id="header-no-prefix"
        ),
        pytest.param(
            "fromHeaders: [{name: X-JWT}]", {"x-jwt": "{t}"}, "/", True, id="header-name-case"
        ),
        pytest.param(
            "fromHeaders: [{name: x-jwt, prefix: 'Token '}]",
            {"x-jwt": "Token {t}"},
            "/",
            True,
            id="prefix-stripped",
        ),
        pytest.param(
            "fromHeaders: [{name: x-jwt, prefix: 'Token '}]",
            {"x-jwt": "{t}"},
            "/",
            False,
            id="prefix-missing-skips",
        ),
        pytest.param(
            "fromHeaders: [{name: x-jwt}]",
            {"authorization": "Bearer {t}"},
            "/",
            False,
            id="configured-disables-default-header",
        ),
        pytest.param(
            "fromHeaders: [{name: x-jwt}]",
            {},
            "/?access_token={t}",
            False,
            id="configured-disables-default-param",
        ),
        pytest.param("fromParams: [tok]", {}, "/a?x=1&tok={t}", True, id="param"),
        pytest.param(
            "fromParams: [tok]",
            {"authorization": "Bearer {t}"},
            "/",
            False,
            id="params-disable-default",
        ),
        pytest.param(
            "fromCookies: [session]", {"cookie": "a=b; session={t}"}, "/", True, id="cookie"
        ),
    ],
)
async def test_token_locations(extra: str, headers: dict[str, str], path: str, found: bool) -> None:
    token = RSA.token()
    filled = {k: v.replace("{t}", token) for k, v in headers.items()}
    outcome = await _check(
        ra(rule(extra=extra)) + REQUIRE_JWT,
        request(headers=filled, path=path.replace("{t}", token)),
    )
    assert outcome.status == (200 if found else 403)


async def test_token_in_several_locations_same_token() -> None:
    token = RSA.token()
    attrs = request(headers=_bearer(token), path=f"/?access_token={token}")
    assert (await _check(ra(rule()) + REQUIRE_JWT, attrs)).status == 200


async def test_any_invalid_token_in_several_locations_rejects() -> None:
    attrs = request(headers=_bearer(RSA.token()), path="/?access_token=a.b.c")
    assert (await _check(ra(rule()) + REQUIRE_JWT, attrs)).status == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            {"origin": "https://a", "access-control-request-method": "GET"}, id="preflight"
        ),
    ],
)
async def test_cors_preflight_bypasses_jwt(headers: dict[str, str]) -> None:
    attrs = request(method="OPTIONS", headers={**headers, **_bearer("garbage")})
    outcome = await _check(ra(rule()) + ALLOW_ALL, attrs)
    assert outcome.status == 200 and outcome.authn.identity is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "", "access-control-request-method": "GET"}, id="empty-origin"),
        pytest.param({"origin": "https://a", "access-control-request-method": ""}, id="empty-acrm"),
        pytest.param({"origin": "https://a"}, id="no-request-method"),
        pytest.param({"access-control-request-method": "GET"}, id="no-origin"),
    ],
)
async def test_options_without_preflight_headers_is_checked(headers: dict[str, str]) -> None:
    attrs = request(method="OPTIONS", headers={**headers, **_bearer("garbage")})
    assert (await _check(ra(rule()), attrs)).status == 401


async def test_token_stripped_before_policies_unless_forwarded() -> None:
    cond = ap("{rules: [{when: [{key: 'request.headers[authorization]', values: ['*']}]}]}")
    attrs = request(headers=_bearer(RSA.token()))
    assert (await _check(ra(rule()) + cond, attrs)).status == 403
    forwarded = ra(rule(extra="forwardOriginalToken: true")) + cond
    assert (await _check(forwarded, attrs)).status == 200


async def test_output_headers_and_hygiene() -> None:
    extra = (
        "outputPayloadToHeader: x-payload\n"
        "outputClaimToHeaders: [{header: x-sub, claim: sub}, {header: x-n, claim: a.b}]"
    )
    token = RSA.token(a={"b": 7})
    outcome = await _check(
        ra(rule(extra=extra)), request(headers={**_bearer(token), "x-sub": "forged"})
    )
    assert outcome.allowed
    set_headers = dict(outcome.authn.headers_to_set)
    assert set_headers["x-sub"] == "alice" and set_headers["x-n"] == "7"
    assert set_headers["x-payload"] == token.split(".")[1]
    # Without a token the client's copies are still removed.
    outcome = await _check(ra(rule(extra=extra)), request(headers={"x-sub": "forged"}))
    assert "x-sub" in outcome.authn.headers_to_remove and not outcome.authn.headers_to_set


async def test_forged_output_header_not_visible_to_policies() -> None:
    extra = "outputClaimToHeaders: [{header: x-sub, claim: sub}]"
    cond = ap("{rules: [{when: [{key: 'request.headers[x-sub]', values: [admin]}]}]}")
    outcome = await _check(ra(rule(extra=extra)) + cond, request(headers={"x-sub": "admin"}))
    assert outcome.status == 403


@pytest.mark.parametrize(
    ("extra", "claim", "value", "matches"),
    [
        pytest.param("", "scope", "read write", True, id="scope-split"),
        pytest.param("", "permission", "read write", True, id="permission-split"),
        pytest.param("", "roles", "read write", False, id="other-not-split"),
        pytest.param(
            "spaceDelimitedClaims: [roles]", "roles", "read write", True, id="spaceDelimitedClaims"
        ),
        pytest.param("", "scope", ["read write"], False, id="list-not-split"),
    ],
)
async def test_space_delimited_claims(extra: str, claim: str, value: Any, matches: bool) -> None:
    cond = ap(f"{{rules: [{{when: [{{key: 'request.auth.claims[{claim}]', values: [write]}}]}}]}}")
    outcome = await _check(
        ra(rule(extra=extra)) + cond, request(headers=_bearer(RSA.token(**{claim: value})))
    )
    assert outcome.allowed is matches


async def test_jwks_unavailable_fails_closed_only_for_tokens() -> None:
    text = ra(f"- issuer: {ISSUER}\n  jwksUri: https://issuer.example.com/jwks") + ALLOW_ALL
    assert (await _check(text, request(headers=_bearer(RSA.token())))).status == 401
    assert (await _check(text, request())).status == 200


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [
        pytest.param(
            OTHER.token(aud="web", headers={"kid": "k1"}),
            403,
            "Audiences in Jwt are not allowed",
            id="audience-before-signature",
        ),
        pytest.param(
            OTHER.token(exp=int(time.time()) - 300, headers={"kid": "k1"}),
            401,
            "Jwt is expired",
            id="expiry-before-signature",
        ),
        pytest.param(
            RSA.token(exp=int(time.time()) - 300, aud="web"),
            401,
            "Jwt is expired",
            id="expiry-before-audience",
        ),
        pytest.param(
            RSA.token(nbf=int(time.time()) + 300, exp=int(time.time()) - 300),
            401,
            "Jwt not yet valid",
            id="nbf-before-exp",
        ),
        pytest.param(
            RSA.token(iss="https://x", exp=int(time.time()) - 300),
            401,
            "Jwt issuer is not configured",
            id="issuer-before-expiry",
        ),
        pytest.param(
            _unsigned({"iss": "https://x"}, {"alg": "none"}),
            401,
            "Jwt header [alg] is not supported",
            id="alg-before-issuer",
        ),
        pytest.param(RSA.token(exp=0, aud="api"), 200, "", id="exp-zero-never-expires"),
        pytest.param(
            RSA.token(exp="soon", aud="api"),
            401,
            "Jwt payload [exp] field is not an integer",
            id="exp-not-a-number",
        ),
    ],
)
async def test_envoy_check_order(token: str, status: int, body: str) -> None:
    """§7.2: jwt_authn checks issuer, nbf, exp, audience, then the key and signature."""
    outcome = await _check(ra(rule(extra="audiences: [api]")), request(headers=_bearer(token)))
    assert (outcome.status, outcome.body) == (status, body)


async def test_unreachable_jwks_still_reports_claim_problems_first() -> None:
    text = ra(f"- issuer: {ISSUER}\n  jwksUri: https://issuer.example.com/jwks\n  audiences: [api]")
    expired = RSA.token(exp=int(time.time()) - 300, aud="api")
    assert (await _check(text, request(headers=_bearer(expired)))).body == "Jwt is expired"
    wrong_aud = RSA.token(aud="web")
    assert (await _check(text, request(headers=_bearer(wrong_aud)))).status == 403
    assert (await _check(text, request(headers=_bearer(RSA.token(aud="api"))))).status == 401


def test_custom_root_namespace() -> None:
    """§1.1: ROOT is meshConfig.rootNamespace; istio-system is only its default."""
    root_deny = ap(DENY_ALL, namespace="mesh-root")
    assert not decide(policy_set(root_deny, root_namespace="mesh-root"), request()).allowed
    default_root_deny = ap(DENY_ALL, namespace="istio-system")
    assert decide(policy_set(default_root_deny, root_namespace="mesh-root"), request()).allowed


@pytest.mark.parametrize("path", ["/a/../admin", "/a/%2e%2e/admin", "//admin", "/ADMIN"])
def test_paths_are_not_renormalised(path: str) -> None:
    """§6: the proxy normalises before the check; matching must take the path as given."""
    assert _allowed(_to("{notPaths: [/admin]}"), request(path=path))


@pytest.mark.parametrize(
    ("extra", "headers", "path", "status"),
    [
        pytest.param("", {"authorization": "Bearer "}, "/", 401, id="empty-bearer-is-a-bad-token"),
        pytest.param("", {"authorization": "Bearer"}, "/", 200, id="prefix-absent-no-token"),
        pytest.param("", {"authorization": "Basic abc"}, "/", 200, id="other-scheme-no-token"),
        pytest.param("", {}, "/?access_token=", 401, id="empty-param-is-a-bad-token"),
        pytest.param("", {"authorization": "Bearer  {t}"}, "/", 200, id="skips-to-jwt-chars"),
        pytest.param("", {"authorization": "x Bearer {t}, y"}, "/", 200, id="prefix-anywhere"),
        pytest.param("fromHeaders: [{name: x-jwt}]", {"x-jwt": ""}, "/", 401, id="empty-header"),
        pytest.param("fromCookies: [s]", {"cookie": "s="}, "/", 401, id="empty-cookie"),
    ],
)
async def test_present_location_always_yields_a_token(
    extra: str, headers: dict[str, str], path: str, status: int
) -> None:
    """§7.1/§8.1: Envoy's extractor: a present location is a token, even an empty one."""
    token = RSA.token()
    filled = {k: v.replace("{t}", token) for k, v in headers.items()}
    outcome = await _check(ra(rule(extra=extra)) + ALLOW_ALL, request(headers=filled, path=path))
    assert outcome.status == status
