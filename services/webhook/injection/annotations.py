"""The pod annotations the injector honours, parsed and validated up front.

An invalid value refuses the pod (``allowed: false`` with the annotation and the reason) rather
than injecting something the user did not ask for. Names mirror Istio's with meshguard's
domain, so a user who knows ``traffic.sidecar.istio.io/excludeInboundPorts`` finds
``traffic.sidecar.meshguard.io/excludeInboundPorts``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping

import yaml

from meshguard.webhook.injection.config import InjectionConfig, Resources

INTERCEPTION_MODE = "sidecar.meshguard.io/interceptionMode"
MTLS_MODE = "sidecar.meshguard.io/mtlsMode"
PROXY_IMAGE = "sidecar.meshguard.io/proxyImage"
PROXY_CPU = "sidecar.meshguard.io/proxyCPU"
PROXY_MEMORY = "sidecar.meshguard.io/proxyMemory"
PROXY_CPU_LIMIT = "sidecar.meshguard.io/proxyCPULimit"
PROXY_MEMORY_LIMIT = "sidecar.meshguard.io/proxyMemoryLimit"
REWRITE_PROBES = "sidecar.meshguard.io/rewriteAppHTTPProbers"
INCLUDE_INBOUND = "traffic.sidecar.meshguard.io/includeInboundPorts"
EXCLUDE_INBOUND = "traffic.sidecar.meshguard.io/excludeInboundPorts"
EXCLUDE_OUTBOUND = "traffic.sidecar.meshguard.io/excludeOutboundPorts"
EXCLUDE_OUTBOUND_CIDRS = "traffic.sidecar.meshguard.io/excludeOutboundIPRanges"
INCLUDE_OUTBOUND_CIDRS = "traffic.sidecar.meshguard.io/includeOutboundIPRanges"
READINESS_PREFIX = "readiness.status.sidecar.meshguard.io/"
PROXY_CONFIG = "proxy.meshguard.io/config"

# Quantity: a number with an optional decimal SI or binary suffix (what kubectl accepts).
_QUANTITY = re.compile(
    r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
)


class InjectionError(ValueError):
    """The pod cannot be injected as asked; the message names the annotation."""


@dataclasses.dataclass(frozen=True, slots=True)
class Readiness:
    initial_delay_seconds: int = 0
    period_seconds: int = 5
    failure_threshold: int = 4


@dataclasses.dataclass(frozen=True, slots=True)
class PodOptions:
    interception: str  # REDIRECT or NONE
    mtls_mode: str  # STRICT or PERMISSIVE
    proxy_image: str
    resources: Resources
    include_inbound: tuple[int, ...] | None  # None: every port ('*')
    exclude_inbound: tuple[int, ...]
    exclude_outbound: tuple[int, ...]  # ports the app dials directly, not through Envoy
    exclude_outbound_cidrs: tuple[str, ...]  # destinations outside the mesh
    include_outbound_cidrs: tuple[str, ...] | None  # None ('*'): every destination; (): none
    rewrite_probes: bool
    readiness: Readiness
    hold_application: bool


def parse(annotations: Mapping[str, str], config: InjectionConfig) -> PodOptions:
    get = annotations.get
    return PodOptions(
        interception=_choice(
            INTERCEPTION_MODE, get(INTERCEPTION_MODE, "REDIRECT"), "REDIRECT", "NONE"
        ),
        mtls_mode=_choice(MTLS_MODE, get(MTLS_MODE, config.mtls_mode), "STRICT", "PERMISSIVE"),
        proxy_image=get(PROXY_IMAGE) or config.proxy_image,
        resources=_resources(annotations, config.resources),
        include_inbound=_include_ports(get(INCLUDE_INBOUND, "*")),
        exclude_inbound=_ports(EXCLUDE_INBOUND, get(EXCLUDE_INBOUND, "")),
        exclude_outbound=_ports(EXCLUDE_OUTBOUND, get(EXCLUDE_OUTBOUND, "")),
        exclude_outbound_cidrs=_cidrs(EXCLUDE_OUTBOUND_CIDRS, get(EXCLUDE_OUTBOUND_CIDRS, "")),
        include_outbound_cidrs=_include_cidrs(get(INCLUDE_OUTBOUND_CIDRS, "*")),
        rewrite_probes=_bool(REWRITE_PROBES, get(REWRITE_PROBES), config.rewrite_app_probes),
        readiness=Readiness(
            _uint(annotations, "initialDelaySeconds", 0),
            _uint(annotations, "periodSeconds", 5),
            _uint(annotations, "failureThreshold", 4),
        ),
        hold_application=_hold_application(get(PROXY_CONFIG)),
    )


def _choice(name: str, value: str, *allowed: str) -> str:
    if value not in allowed:
        raise InjectionError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _ports(name: str, text: str) -> tuple[int, ...]:
    ports = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise InjectionError(f"{name}: {part!r} is not a port number (1-65535)")
        ports.append(int(part))
    return tuple(ports)


def _cidrs(name: str, text: str) -> tuple[str, ...]:
    cidrs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            network = ipaddress.IPv4Network(part, strict=False)
        except ValueError:
            raise InjectionError(f"{name}: {part!r} is not an IPv4 CIDR") from None
        cidrs.append(str(network))
    return tuple(cidrs)


def _include_cidrs(text: str) -> tuple[str, ...] | None:
    # As in Istio: '*' captures every destination, an empty value none at all.
    return None if text.strip() == "*" else _cidrs(INCLUDE_OUTBOUND_CIDRS, text)


def _include_ports(text: str) -> tuple[int, ...] | None:
    return None if text.strip() == "*" else _ports(INCLUDE_INBOUND, text)


def _resources(annotations: Mapping[str, str], defaults: Resources) -> Resources:
    names = (PROXY_CPU, PROXY_MEMORY, PROXY_CPU_LIMIT, PROXY_MEMORY_LIMIT)
    given = {n: annotations[n] for n in names if n in annotations}
    if not given:
        return defaults
    for name, value in given.items():
        if not _QUANTITY.match(value):
            raise InjectionError(f"{name}: {value!r} is not a Kubernetes quantity")
    # As in Istio: any resource annotation replaces all the defaults, not just its own field.
    return Resources(*(given.get(n) for n in names))


def _bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InjectionError(f"{name}: {value!r} is not true or false")


def _uint(annotations: Mapping[str, str], field: str, default: int) -> int:
    name = READINESS_PREFIX + field
    value = annotations.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise InjectionError(f"{name}: {value!r} is not a non-negative integer")
    return int(value)


def _hold_application(text: str | None) -> bool:
    if not text:
        return False
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InjectionError(f"{PROXY_CONFIG}: not YAML: {exc}") from None
    if not isinstance(config, dict):
        raise InjectionError(f"{PROXY_CONFIG}: must be a mapping")
    hold = config.get("holdApplicationUntilProxyStarts", False)
    if not isinstance(hold, bool):
        raise InjectionError(f"{PROXY_CONFIG}: holdApplicationUntilProxyStarts must be a boolean")
    return hold
