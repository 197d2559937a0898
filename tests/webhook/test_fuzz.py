"""Random specs never crash a validator or the analyzers, and always yield allow or deny."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshguard.common.resources import from_dict
from meshguard.registry import default_registry
from meshguard.webhook import admission
from meshguard.webhook.analyze_command import analyze
from tests.webhook.support import CONFORMANCE, GROUPS, load_case

REGISTRY = default_registry()
KINDS = sorted(GROUPS)
# Field names the validators look at, so random objects reach deep into the rules.
KEYS = sorted(
    {
        "hosts", "gateways", "http", "tcp", "tls", "route", "destination", "host", "subset",
        "port", "number", "name", "protocol", "match", "uri", "prefix", "exact", "regex",
        "headers", "request", "set", "add", "remove", "weight", "timeout", "retries", "attempts",
        "retryOn", "redirect", "rewrite", "fault", "abort", "delay", "percentage", "value",
        "corsPolicy", "mirror", "mirrors", "servers", "selector", "matchLabels", "labels",
        "mode", "credentialName", "subsets", "trafficPolicy", "connectionPool", "loadBalancer",
        "outlierDetection", "portLevelSettings", "exportTo", "resolution", "endpoints",
        "address", "addresses", "ports", "egress", "ingress", "bind", "defaultEndpoint",
        "workloadSelector", "mtls", "portLevelMtls", "rules", "from", "to", "when", "action",
        "jwtRules", "issuer", "jwksUri", "sniHosts", "directResponse", "status", "body",
        "localityLbSetting", "distribute", "failover", "consistentHash", "maglev", "tableSize",
        "outboundTrafficPolicy", "egressProxy", "tunnel", "targetHost", "targetPort",
    }
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "*", "0s", "1ms", "reviews", "a.example.com", "10.0.0.1/8", "(?!x)",
                     "unix:///a", "STRICT", "HTTP", "ns/x", ":authority", "%", "80", "v1"]),
    st.text(max_size=12),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=40,
)
CASES = [load_case(p)[1] for p in sorted(CONFORMANCE.glob("*/*.yaml")) if p.parent.name != "pods"]
AUTHZ_KINDS = ("AuthorizationPolicy", "RequestAuthentication")
WEBHOOK_CASES = [c for c in CASES if c.kind not in AUTHZ_KINDS]
AUTHZ_CASES = [c for c in CASES if c.kind in AUTHZ_KINDS]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _review(kind: str, obj: Any) -> admission.AdmissionRequest:
    group = GROUPS[kind]
    return admission.AdmissionRequest(
        api_version="admission.k8s.io/v1", uid="u", group=group, version="v1", kind=kind,
        operation="CREATE", namespace="ns", dry_run=False, object=obj,
    )  # fmt: skip


@FUZZ
@given(kind=st.sampled_from(KINDS), spec=JSON, annotations=st.dictionaries(st.text(max_size=20),
       st.text(max_size=5), max_size=2))  # fmt: skip
def test_random_specs_get_a_verdict(kind: str, spec: Any, annotations: dict[str, str]) -> None:
    obj = {
        "apiVersion": f"{GROUPS[kind]}/v1",
        "kind": kind,
        "metadata": {"name": "fuzz", "namespace": "ns", "annotations": annotations},
        "spec": spec,
    }
    verdict = admission.decide(_review(kind, obj), REGISTRY)
    assert verdict.allowed in (True, False)
    assert verdict.code != admission.INTERNAL_CODE, verdict.message  # no validator crashed


@FUZZ
@given(case=st.sampled_from(WEBHOOK_CASES), data=st.data())
def test_mutated_conformance_cases(case: Any, data: st.DataObject) -> None:
    """Replace one value somewhere in a realistic object with random JSON."""
    _check_mutated(case, data)


@FUZZ
@given(case=st.sampled_from(AUTHZ_CASES), data=st.data())
def test_mutated_authz_cases(case: Any, data: st.DataObject) -> None:
    _check_mutated(case, data)


def _check_mutated(case: Any, data: st.DataObject) -> None:
    spec = _mutate(dict(case.raw.get("spec") or {}), data)
    obj = {**case.raw, "spec": spec}
    verdict = admission.decide(_review(case.kind, obj), REGISTRY)
    assert verdict.code != admission.INTERNAL_CODE, verdict.message
    if isinstance(spec, dict):  # otherwise the envelope is refused before any analyzer runs
        analyze([from_dict(obj)], REGISTRY)


def _mutate(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        if data.draw(st.booleans()):
            return {**value, key: data.draw(JSON)}
        return {**value, key: _mutate(value[key], data)}
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _mutate(value[index], data), *value[index + 1 :]]
    return data.draw(JSON)
