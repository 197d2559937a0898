"""The cross-resource analyzers behind ``meshguard analyze`` (codes in :mod:`analysis`).

Each analyzer reads the :class:`~meshguard.webhook.analysis.Inventory` and yields diagnostics;
none of them trusts the shape of a spec (invalid objects are reported by MG0001 and must not
crash the rest of the analysis).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.analysis import Diagnostic, Inventory, diagnostic, namespace_of
from meshguard.webhook.injection import annotations as pod_annotations
from meshguard.webhook.injection import decision, inject

Analyzer = Callable[[Inventory], Iterator[Diagnostic]]
MESH = "mesh"
ROOT_NAMESPACE = "istio-system"
KNOWN_ISTIO_SIDECAR = frozenset(
    f"sidecar.istio.io/{name}"
    for name in (
        "inject", "status", "proxyImage", "proxyImageType", "proxyCPU", "proxyCPULimit",
        "proxyMemory", "proxyMemoryLimit", "interceptionMode", "logLevel", "componentLogLevel",
        "agentLogLevel", "discoveryAddress", "rewriteAppHTTPProbers", "statsInclusionPrefixes",
        "statsInclusionSuffixes", "statsInclusionRegexps", "statsHistogramBuckets",
        "statsFlushInterval", "userVolume", "userVolumeMount", "bootstrapOverride",
        "enableCoreDump", "extraStatTags", "templates", "controlPlaneAuthPolicy",
        "nativeSidecar", "dnsCapture",
    )
)  # fmt: skip
KNOWN_MESHGUARD_PREFIXES = (pod_annotations.READINESS_PREFIX,)


def _injector_names() -> frozenset[str]:
    """Every name the injector reads or writes, taken from the injection modules that define
    them, so a new pod annotation there is known here without a second list to keep in step."""
    pod_options = {
        value
        for name, value in vars(pod_annotations).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
        and value not in KNOWN_MESHGUARD_PREFIXES
    }  # fmt: skip
    written = {decision.REVISION_LABEL, decision.INJECT_KEY, decision.STATUS_ANNOTATION,
               inject.TLS_MODE_LABEL}  # fmt: skip
    return frozenset(pod_options | written)


KNOWN_MESHGUARD = _injector_names()


def fqdn(host: str, namespace: str) -> str:
    """A short host (``reviews``) as the mesh resolves it in ``namespace``."""
    return f"{host}.{namespace}.svc.cluster.local" if hosts.is_short_name(host) else host.lower()


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _destinations(vs: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, destination) for every route and mirror destination of a VirtualService."""
    for section in ("http", "tcp", "tls"):
        for i, rule in enumerate(_maps(vs.spec.get(section))):
            base = f"spec.{section}[{i}]"
            for j, route in enumerate(_maps(rule.get("route"))):
                destination = route.get("destination")
                if isinstance(destination, Mapping):
                    yield f"{base}.route[{j}].destination", destination
            mirror = rule.get("mirror")
            if isinstance(mirror, Mapping):
                yield f"{base}.mirror", mirror
            for j, each in enumerate(_maps(rule.get("mirrors"))):
                destination = each.get("destination")
                if isinstance(destination, Mapping):
                    yield f"{base}.mirrors[{j}].destination", destination


def subsets_defined(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0101: host+subset that no DestinationRule for that host defines."""
    defined: dict[str, set[str]] = {}
    for dr in inventory.istio("DestinationRule"):
        host = fqdn(_str(dr.spec.get("host")), namespace_of(dr))
        names = {_str(s.get("name")) for s in _maps(dr.spec.get("subsets"))}
        defined.setdefault(host, set()).update(names)
    for vs in inventory.istio("VirtualService"):
        for path, destination in _destinations(vs):
            subset = _str(destination.get("subset"))
            if not subset:
                continue
            host = fqdn(_str(destination.get("host")), namespace_of(vs))
            available = set().union(
                *(names for dr_host, names in defined.items() if hosts.covers(dr_host, host))
            )
            if subset not in available:
                yield diagnostic(vs, "MG0101", f"{path}.subset",
                                 f"subset {subset!r} of host {host!r} is not defined by any "
                                 "DestinationRule")  # fmt: skip


def _gateway_ref(name: str, namespace: str) -> tuple[str, str]:
    ns, slash, gateway = name.partition("/")
    if slash:
        return (namespace if ns == "." else ns), gateway
    first, dot, rest = name.partition(".")
    return (rest.partition(".")[0], first) if dot else (namespace, name)


def _bound_gateways(vs: Resource) -> list[tuple[str, str]]:
    """(path, gateway name) of spec.gateways, or the implicit mesh."""
    names = vs.spec.get("gateways")
    if not isinstance(names, list) or not names:
        return [("spec.gateways", MESH)]
    return [(f"spec.gateways[{i}]", n) for i, n in enumerate(names) if isinstance(n, str)]


def gateways_exist(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0102: a VirtualService bound to a Gateway that is not in the input."""
    known = {(namespace_of(g), g.metadata.name) for g in inventory.istio("Gateway")}
    for vs in inventory.istio("VirtualService"):
        for path, name in _bound_gateways(vs):
            if name == MESH:
                continue
            ref = _gateway_ref(name, namespace_of(vs))
            if ref not in known:
                yield diagnostic(vs, "MG0102", path,
                                 f"gateway {ref[0]}/{ref[1]} is not defined")  # fmt: skip


def conflicting_hosts(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0103: the same host claimed by several VirtualServices on one gateway."""
    claims: dict[tuple[str, str], list[Resource]] = {}
    for vs in inventory.latest_istio("VirtualService"):
        ns = namespace_of(vs)
        for _, gateway in _bound_gateways(vs):
            key_gateway = MESH if gateway == MESH else "/".join(_gateway_ref(gateway, ns))
            for host in _strings(vs.spec.get("hosts")):
                if host:
                    claims.setdefault((key_gateway, fqdn(host, ns)), []).append(vs)
    for (gateway, host), owners in claims.items():
        unique = list({id(o): o for o in owners}.values())
        for vs in unique[1:]:
            others = ", ".join(f"{o.metadata.name}.{namespace_of(o)}" for o in unique
                               if o is not vs)  # fmt: skip
            yield diagnostic(vs, "MG0103", "spec.hosts",
                             f"host {host!r} on {gateway} is also claimed by {others}")  # fmt: skip


def _labels(value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): str(v) for k, v in value.items()}


def gateway_selectors(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0104: a Gateway whose selector matches no workload (any namespace)."""
    if not inventory.workloads:
        return
    for gateway in inventory.istio("Gateway"):
        labels = _labels(gateway.spec.get("selector"))
        if labels and not inventory.selects_any(labels, None):
            yield diagnostic(gateway, "MG0104", "spec.selector",
                             f"no workload has the labels {labels}")  # fmt: skip


def policy_selectors(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0105: a security policy selector that matches no workload in its scope."""
    if not inventory.workloads:
        return
    for kind in ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"):
        for policy in inventory.of(kind):
            selector = policy.spec.get("selector")
            labels = _labels(selector.get("matchLabels")) if isinstance(selector, Mapping) else None
            if not labels:
                continue
            ns = namespace_of(policy)
            scope = None if ns == ROOT_NAMESPACE else ns
            if not inventory.selects_any(labels, scope):
                yield diagnostic(policy, "MG0105", "spec.selector.matchLabels",
                                 f"no workload in {scope or 'the mesh'} has the labels "
                                 f"{labels}")  # fmt: skip


def peer_authentication_modes(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0106: PeerAuthentications selecting the same workloads with different modes."""
    first: dict[tuple[str, str], tuple[Resource, str]] = {}
    for policy in inventory.latest_istio("PeerAuthentication"):
        mtls = policy.spec.get("mtls")
        mode = _str(mtls.get("mode")) if isinstance(mtls, Mapping) else ""
        if not mode or mode == "UNSET":
            continue
        selector = policy.spec.get("selector")
        labels = _labels(selector.get("matchLabels")) if isinstance(selector, Mapping) else None
        key = (namespace_of(policy), json.dumps(labels or {}, sort_keys=True))
        if key not in first:
            first[key] = (policy, mode)
            continue
        earlier, earlier_mode = first[key]
        if earlier_mode != mode:
            yield diagnostic(policy, "MG0106", "spec.mtls.mode",
                             f"mode {mode} conflicts with {earlier_mode} set by PeerAuthentication "
                             f"{earlier.metadata.name} for the same workloads")  # fmt: skip


def _service_hosts(inventory: Inventory) -> dict[str, Resource]:
    return {
        f"{s.metadata.name}.{namespace_of(s)}.svc.cluster.local": s
        for s in inventory.of("Service")
        if s.group == ""
    }


def destination_rule_hosts(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0107: a DestinationRule host no Service or ServiceEntry provides."""
    services = _service_hosts(inventory)
    if not services:
        return
    entries = [
        h for se in inventory.istio("ServiceEntry") for h in _strings(se.spec.get("hosts"))
    ]  # fmt: skip
    for dr in inventory.istio("DestinationRule"):
        host = fqdn(_str(dr.spec.get("host")), namespace_of(dr))
        if not host or "*" in host:
            continue
        if host not in services and not any(hosts.covers(e, host) for e in entries):
            yield diagnostic(dr, "MG0107", "spec.host",
                             f"no Service or ServiceEntry provides host {host!r}")  # fmt: skip


def subset_workloads(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0108: subset labels that select none of the host Service's workloads."""
    services = _service_hosts(inventory)
    if not inventory.workloads or not services:
        return
    for dr in inventory.istio("DestinationRule"):
        service = services.get(fqdn(_str(dr.spec.get("host")), namespace_of(dr)))
        selector = _labels(service.spec.get("selector")) if service is not None else None
        if service is None or not selector:
            continue
        for i, subset in enumerate(_maps(dr.spec.get("subsets"))):
            labels = {**selector, **(_labels(subset.get("labels")) or {})}
            if not inventory.selects_any(labels, namespace_of(service)):
                yield diagnostic(dr, "MG0108", f"spec.subsets[{i}].labels",
                                 f"subset {_str(subset.get('name'))!r} selects no workload of "
                                 f"Service {service.metadata.name} (labels {labels})")  # fmt: skip


def _annotation_sets(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield "metadata.annotations", resource.metadata.annotations
    template = resource.spec.get("template")
    meta = template.get("metadata") if isinstance(template, Mapping) else None
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping):
        yield "spec.template.metadata.annotations", annotations


def _unknown_annotation(name: str) -> bool:
    if name.startswith("sidecar.istio.io/"):
        return name not in KNOWN_ISTIO_SIDECAR
    domain = name.partition("/")[0]
    if domain == "meshguard.io" or domain.endswith(".meshguard.io"):
        return name not in KNOWN_MESHGUARD and not name.startswith(KNOWN_MESHGUARD_PREFIXES)
    return False


def unknown_annotations(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0109: sidecar.istio.io/* and *meshguard.io/* annotations nobody reads (typos)."""
    for resource in inventory.resources:
        for path, values in _annotation_sets(resource):
            for name in values:
                if isinstance(name, str) and _unknown_annotation(name):
                    yield diagnostic(resource, "MG0109", f"{path}[{name}]",
                                     f"unknown annotation {name!r}")  # fmt: skip


def selectorless_sidecars(inventory: Inventory) -> Iterator[Diagnostic]:
    """MG0110: more than one Sidecar without workloadSelector in a namespace."""
    seen: dict[str, Resource] = {}
    for sidecar in inventory.latest_istio("Sidecar"):
        if sidecar.spec.get("workloadSelector") is not None:
            continue
        ns = namespace_of(sidecar)
        if ns in seen:
            yield diagnostic(sidecar, "MG0110", "spec",
                             f"Sidecar {seen[ns].metadata.name} also has no workloadSelector in "
                             f"namespace {ns}")  # fmt: skip
        else:
            seen[ns] = sidecar


ANALYZERS: tuple[Analyzer, ...] = (
    subsets_defined,
    gateways_exist,
    conflicting_hosts,
    gateway_selectors,
    policy_selectors,
    peer_authentication_modes,
    destination_rule_hosts,
    subset_workloads,
    unknown_annotations,
    selectorless_sidecars,
)
