"""Each analyzer with a case that triggers it and a close one that must not."""

from __future__ import annotations

from typing import Any

import pytest

from meshguard.common.resources import Resource, from_dict
from meshguard.registry import default_registry
from meshguard.webhook.analysis import Diagnostic
from meshguard.webhook.analyze_command import analyze
from meshguard.webhook.injection import annotations as pod_annotations


def obj(
    api: str, kind: str, name: str, spec: dict[str, Any], ns: str = "shop", **meta: Any
) -> Resource:
    metadata = {"name": name, "namespace": ns, **meta}
    return from_dict({"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec})


def vs(name: str, spec: dict[str, Any], ns: str = "shop") -> Resource:
    return obj("networking.istio.io/v1", "VirtualService", name, spec, ns)


def dr(name: str, spec: dict[str, Any]) -> Resource:
    return obj("networking.istio.io/v1", "DestinationRule", name, spec)


def route(host: str, subset: str | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if subset:
        destination["subset"] = subset
    return {"route": [{"destination": destination}]}


def deployment(name: str, labels: dict[str, str], ns: str = "shop", **annotations: str) -> Resource:
    template: dict[str, Any] = {"metadata": {"labels": labels}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return obj("apps/v1", "Deployment", name, {"template": template}, ns)


def service(name: str, selector: dict[str, str]) -> Resource:
    return obj("v1", "Service", name, {"selector": selector, "ports": [{"port": 80}]})


GATEWAY = obj("networking.istio.io/v1", "Gateway", "public", {
    "selector": {"istio": "ingressgateway"},
    "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
})  # fmt: skip
REVIEWS_DR = dr(
    "reviews", {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}
)


def codes(*resources: Resource) -> list[str]:
    return [d.code for d in analyze(resources, default_registry())]


def only(code: str, *resources: Resource) -> list[Diagnostic]:
    return [d for d in analyze(resources, default_registry()) if d.code == code]


def test_mg0101_subset_not_defined() -> None:
    assert (
        only(
            "MG0101", vs("r", {"hosts": ["reviews"], "http": [route("reviews", "v1")]}), REVIEWS_DR
        )
        == []
    )
    found = only(
        "MG0101", vs("r", {"hosts": ["reviews"], "http": [route("reviews", "v2")]}), REVIEWS_DR
    )
    assert [d.path for d in found] == ["spec.http[0].route[0].destination.subset"]
    other_ns = vs("r", {"hosts": ["reviews"], "http": [route("reviews", "v1")]}, ns="other")
    assert len(only("MG0101", other_ns, REVIEWS_DR)) == 1  # resolves to reviews.other


def test_mg0102_gateway_not_found() -> None:
    bound = {"hosts": ["a.example.com"], "http": [route("a")]}
    assert only("MG0102", vs("a", {**bound, "gateways": ["public", "mesh"]}), GATEWAY) == []
    assert only("MG0102", vs("a", {**bound, "gateways": ["shop/public"]}), GATEWAY) == []
    missing = only("MG0102", vs("a", {**bound, "gateways": ["istio-system/public"]}), GATEWAY)
    assert [d.path for d in missing] == ["spec.gateways[0]"]


def test_mg0103_conflicting_hosts() -> None:
    a = vs("a", {"hosts": ["reviews"], "http": [route("reviews")]})
    b = vs("b", {"hosts": ["reviews.shop.svc.cluster.local"], "http": [route("reviews")]})
    assert len(only("MG0103", a, b)) == 1
    on_gateway = vs("b", {"hosts": ["reviews"], "gateways": ["public"], "http": [route("reviews")]})
    assert only("MG0103", a, on_gateway, GATEWAY) == []
    assert (
        only("MG0103", a, vs("a", {"hosts": ["reviews"], "http": [route("x")]})) == []
    )  # same object


def test_mg0104_gateway_selector() -> None:
    assert only("MG0104", GATEWAY) == []  # no workloads given: not checked
    gw = deployment("ingress", {"istio": "ingressgateway"}, ns="istio-system")
    assert only("MG0104", GATEWAY, gw) == []
    assert len(only("MG0104", GATEWAY, deployment("app", {"app": "x"}))) == 1


@pytest.mark.parametrize(
    "kind", ["AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"]
)
def test_mg0105_policy_selector(kind: str) -> None:
    policy = obj("security.istio.io/v1", kind, "p", {"selector": {"matchLabels": {"app": "web"}}})
    assert only("MG0105", policy, deployment("web", {"app": "web"})) == []
    assert len(only("MG0105", policy, deployment("web", {"app": "web"}, ns="other"))) == 1
    root = obj("security.istio.io/v1", kind, "p", {"selector": {"matchLabels": {"app": "web"}}},
               ns="istio-system")  # fmt: skip
    assert only("MG0105", root, deployment("web", {"app": "web"}, ns="other")) == []


def test_mg0106_conflicting_peer_authentication() -> None:
    def pa(name: str, mode: str, **selector: str) -> Resource:
        spec: dict[str, Any] = {"mtls": {"mode": mode}}
        if selector:
            spec["selector"] = {"matchLabels": selector}
        return obj("security.istio.io/v1", "PeerAuthentication", name, spec)

    assert only("MG0106", pa("a", "STRICT"), pa("b", "STRICT"), pa("c", "DISABLE", app="x")) == []
    assert len(only("MG0106", pa("a", "STRICT"), pa("b", "PERMISSIVE"))) == 1


def test_mg0107_destination_rule_host() -> None:
    assert only("MG0107", REVIEWS_DR) == []  # no Services given: not checked
    assert only("MG0107", REVIEWS_DR, service("reviews", {"app": "reviews"})) == []
    assert len(only("MG0107", REVIEWS_DR, service("ratings", {"app": "ratings"}))) == 1
    entry = obj("networking.istio.io/v1", "ServiceEntry", "ext", {"hosts": ["*.example.com"]})
    external = dr("ext", {"host": "api.example.com"})
    assert only("MG0107", external, entry, service("ratings", {"app": "ratings"})) == []


def test_mg0108_subset_selects_no_workload() -> None:
    svc = service("reviews", {"app": "reviews"})
    v1 = deployment("reviews-v1", {"app": "reviews", "version": "v1"})
    assert only("MG0108", REVIEWS_DR, svc, v1) == []
    v2 = deployment("reviews-v2", {"app": "reviews", "version": "v2"})
    assert [d.path for d in only("MG0108", REVIEWS_DR, svc, v2)] == ["spec.subsets[0].labels"]


def test_mg0109_unknown_annotations() -> None:
    good = deployment("a", {"app": "a"}, **{"sidecar.istio.io/inject": "true",
                                             "sidecar.meshguard.io/proxyCPU": "100m"})  # fmt: skip
    assert only("MG0109", good) == []
    bad = deployment("a", {"app": "a"}, **{"sidecar.istio.io/injec": "true"})
    assert [d.path for d in only("MG0109", bad)] == [
        "spec.template.metadata.annotations[sidecar.istio.io/injec]"
    ]
    typo = obj("networking.istio.io/v1", "DestinationRule", "d", {"host": "a"},
               annotations={"meshguard.io/revision": "x"})  # fmt: skip
    assert len(only("MG0109", typo)) == 1


def test_mg0109_knows_every_annotation_the_injector_reads() -> None:
    names = {
        value
        for name, value in vars(pod_annotations).items()
        if name.isupper() and isinstance(value, str) and value != pod_annotations.READINESS_PREFIX
    }
    assert pod_annotations.EXCLUDE_OUTBOUND_CIDRS in names  # was missing from a copied list
    pod = deployment("a", {"app": "a"}, **dict.fromkeys(names, "x"),
                     **{f"{pod_annotations.READINESS_PREFIX}applied": "x"})  # fmt: skip
    assert only("MG0109", pod) == []


def test_mg0110_selectorless_sidecars() -> None:
    def sidecar(name: str, **spec: Any) -> Resource:
        return obj(
            "networking.istio.io/v1", "Sidecar", name, {"egress": [{"hosts": ["./*"]}], **spec}
        )

    scoped = sidecar("b", workloadSelector={"labels": {"app": "x"}})
    assert only("MG0110", sidecar("a"), scoped) == []
    assert len(only("MG0110", sidecar("a"), sidecar("b"))) == 1


def test_object_findings_and_crd_rules() -> None:
    broken = vs("r", {"hosts": ["reviews"]})
    assert codes(broken) == ["MG0001"]
    typo = vs("r", {"hosts": ["reviews"], "http": [{**route("reviews"), "retry": {}}]})
    assert codes(typo) == ["MG0002"]


def test_garbage_specs_do_not_crash_analyzers() -> None:
    weird = [
        vs("a", {"hosts": "x", "http": "y", "gateways": [1, None]}),
        dr("b", {"host": 5, "subsets": [1, {"name": None, "labels": "x"}]}),
        obj("networking.istio.io/v1", "Gateway", "g", {"selector": ["x"]}),
        obj("apps/v1", "Deployment", "d", {"template": {"metadata": {"labels": "x"}}}),
        obj("security.istio.io/v1", "PeerAuthentication", "p", {"mtls": "x", "selector": 3}),
    ]
    assert all(d.level for d in analyze(weird, default_registry()))
