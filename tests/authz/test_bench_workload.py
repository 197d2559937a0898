"""The authz benchmark's workload really is what RESULTS.md claims it measures."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from benchmarks.authz import workload
from meshguard.authz.attributes import HttpRequest, RequestAttributes
from meshguard.authz.authn import Authenticator
from meshguard.authz.authorizer import Authorizer
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule
from tests.authz.support import policy_set

SIGNER = workload.Signer.generate()


def _request(path: str, token: str | None) -> RequestAttributes:
    headers = {":authority": "web", ":method": "GET", ":path": path}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return RequestAttributes(
        namespace=workload.NAMESPACE,
        labels=MappingProxyType({"app": "web"}),
        http=HttpRequest("web", "GET", path, MappingProxyType(headers)),
    )


async def _no_remote_keys(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
    return None


def test_policy_set_has_fifty_policies_over_ten_namespaces() -> None:
    docs = workload.documents(SIGNER)
    policies = [d for d in docs if d["kind"] == "AuthorizationPolicy"]
    assert len(policies) == 50
    assert len({d["metadata"]["namespace"] for d in policies}) == 10
    assert [d["kind"] for d in docs].count("RequestAuthentication") == 1


@pytest.mark.parametrize(
    ("path", "groups", "with_token", "allowed"),
    [
        (workload.REQUEST_PATH, ("dev",), True, True),
        (workload.REQUEST_PATH, ("dev",), False, False),
        ("/internal/x", ("dev",), True, False),
        ("/admin/x", ("dev",), True, False),
        ("/admin/x", ("admin",), True, True),
    ],
)
async def test_benchmark_request_is_allowed_and_the_rules_bite(
    path: str, groups: tuple[str, ...], with_token: bool, allowed: bool
) -> None:
    policies = policy_set(workload.yaml_text(SIGNER))
    authorizer = Authorizer(lambda: policies, Authenticator(_no_remote_keys))
    token = SIGNER.token(groups=groups) if with_token else None
    outcome = await authorizer.check(_request(path, token))
    assert outcome.allowed is allowed


def test_native_filters_cover_the_target_namespace_rules() -> None:
    rbac = [
        f
        for f in workload.native_filters(SIGNER)
        if f["name"].startswith("envoy.filters.http.rbac")
    ]
    names = {name for f in rbac for name in f["typed_config"]["rules"]["policies"]}
    target = {
        d["metadata"]["name"]
        for d in workload.documents(SIGNER)
        if d["kind"] == "AuthorizationPolicy"
        and d["metadata"]["namespace"] == workload.NAMESPACE
        and d["spec"].get("selector", {}).get("matchLabels", {}).get("app", "web") == "web"
    }
    assert names == target
