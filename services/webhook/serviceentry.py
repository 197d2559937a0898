"""ServiceEntry validation (reference section 4.4)."""

from __future__ import annotations

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.fields import Node, Report
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import (
    HTTP_PROTOCOLS,
    TLS_PROTOCOLS,
    check_export_to,
    check_labels,
    check_selector,
    port_error,
    port_name_error,
    protocol_error,
)

UNIX_PREFIX = "unix://"
AUTOALLOCATE = "networking.istio.io/enable-autoallocate-ip"
USE_WAYPOINT = "istio.io/use-waypoint"
DYNAMIC_DNS_PROTOCOLS = frozenset({"HTTP", "TLS", "GRPC", "HTTP2"})


def validate_service_entry(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    spec = Node(resource.spec, "spec", report)
    resolution = spec.text("resolution") or "NONE"
    host_entries = list(spec.strings("hosts"))
    if not host_entries:
        spec.error("hosts", "a ServiceEntry needs at least one host")
    for path, host in host_entries:
        _check_host(spec, path, host, resolution)
    addresses = list(spec.strings("addresses"))
    for path, address in addresses:
        if not hosts.is_cidr_or_ip(address):
            report.error(path, f"address {address!r} is not an IP address or CIDR")
        elif "/" in address and resolution not in ("NONE", "STATIC"):
            report.error(
                path, f"CIDR address {address!r} is only allowed with resolution NONE or STATIC"
            )
    endpoints = list(spec.children("endpoints"))
    if spec.has("workloadSelector") and spec.has("endpoints"):
        spec.error("workloadSelector", "only one of workloadSelector or endpoints may be set")
    check_selector(spec, "workloadSelector", "labels")
    ports = _check_ports(spec)
    protocols = [p for p, _ in ports.values()]
    _check_resolution(spec, resolution, endpoints, ports, bool(addresses))
    if (
        resolution != "NONE"
        and len(host_entries) > 1
        and any(p not in HTTP_PROTOCOLS and p not in TLS_PROTOCOLS for p in protocols)
    ):
        spec.error(
            "ports",
            "several hosts need HTTP or TLS ports to be told apart: a plain TCP "
            "(or unset) protocol port cannot route by host",
        )
    autoallocate = resource.metadata.annotations.get(AUTOALLOCATE, "") != "false"
    if not addresses and (resolution == "NONE" or not autoallocate):
        for name, (protocol, path) in ports.items():
            if protocol in ("", "TCP"):
                report.warn(
                    path,
                    f"port {name!r} is TCP but the ServiceEntry has no addresses "
                    "and no IP will be auto-allocated: traffic is matched by port only",
                )
    if resolution == "DYNAMIC_DNS":
        location = spec.text("location") or "MESH_EXTERNAL"
        waypoint = USE_WAYPOINT in resource.metadata.labels
        if location != "MESH_EXTERNAL" and (location != "MESH_INTERNAL" or waypoint):
            spec.error(
                "location",
                "DYNAMIC_DNS requires location MESH_EXTERNAL (or MESH_INTERNAL without a waypoint)",
            )
    check_export_to(spec, resource.metadata.namespace, allow_none=True)
    return report.findings


def _check_host(spec: Node, path: str, host: str, resolution: str) -> None:
    if host == "*":
        spec.report.error(path, "host '*' is not allowed on a ServiceEntry")
        return
    problem = hosts.wildcard_domain_error(host)
    if problem:
        spec.report.error(path, problem)
    elif hosts.is_partial_wildcard(host) and resolution != "DYNAMIC_DNS":
        spec.report.warn(
            path, f"partial wildcard host {host!r} only works with resolution DYNAMIC_DNS"
        )


def _check_ports(spec: Node) -> dict[str, tuple[str, str]]:
    """Validate ports; return name -> (upper-case protocol, path) for the later rules."""
    ports: dict[str, tuple[str, str]] = {}
    numbers: set[int] = set()
    for _, port in spec.children("ports"):
        number = port.integer("number")
        problem = port_error(number)
        if problem:
            port.error("number", problem)
        elif number is not None:
            if number in numbers:
                port.error("number", f"port number {number} is declared twice")
            numbers.add(number)
        problem = port_error(port.integer("targetPort"))
        if problem:
            port.error("targetPort", problem)
        name = port.text("name")
        if name is not None:
            problem = port_name_error(name)
            if problem:
                port.error("name", problem)
            elif name in ports:
                port.error("name", f"port name {name!r} is declared twice")
        protocol = port.text("protocol") or ""
        if protocol:
            problem = protocol_error(protocol)
            if problem:
                port.error("protocol", problem)
        ports[name or f"#{number}"] = (protocol.upper(), port.path)
    return ports


def _check_resolution(
    spec: Node,
    resolution: str,
    endpoints: list[tuple[int, Node]],
    ports: dict[str, tuple[str, str]],
    has_addresses: bool,
) -> None:
    if resolution == "NONE":
        if endpoints:
            spec.error("endpoints", "resolution NONE must not list endpoints")
        if spec.has("workloadSelector"):
            spec.warn("workloadSelector", "workloadSelector has no effect with resolution NONE")
    elif resolution == "STATIC":
        for _, endpoint in endpoints:
            address = endpoint.text("address")
            if address and not address.startswith(UNIX_PREFIX) and not hosts.is_ip(address):
                endpoint.error(
                    "address",
                    f"STATIC endpoints must be IP addresses or unix:// paths, got {address!r}",
                )
            _check_endpoint(endpoint, ports)
    elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
        if not endpoints:
            for path, host in spec.strings("hosts"):
                if "*" in host or hosts.fqdn_error(host):
                    spec.report.error(
                        path,
                        f"with resolution {resolution} and no endpoints, "
                        f"hosts must be plain FQDNs, got {host!r}",
                    )
        if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
            spec.error("endpoints", "DNS_ROUND_ROBIN allows at most one endpoint")
        for _, endpoint in endpoints:
            address = endpoint.text("address")
            if address and not hosts.is_ip(address) and hosts.fqdn_error(address):
                endpoint.error("address", f"endpoint address {address!r} must be an IP or FQDN")
            _check_endpoint(endpoint, ports)
        if (
            has_addresses
            and len(list(spec.strings("hosts"))) > 1
            and any(p == "TCP" for p, _ in ports.values())
        ):
            spec.warn(
                "hosts", "a ServiceEntry with addresses and a TCP port should have a single host"
            )
    elif resolution == "DYNAMIC_DNS":
        for path, host in spec.strings("hosts"):
            if "*" not in host:
                spec.report.error(path, f"DYNAMIC_DNS requires wildcard hosts, got {host!r}")
        for key in ("addresses", "endpoints"):
            if spec.array(key):
                spec.error(key, f"DYNAMIC_DNS does not allow {key}")
        for protocol, path in ports.values():
            if protocol not in DYNAMIC_DNS_PROTOCOLS:
                spec.report.error(
                    f"{path}.protocol",
                    "DYNAMIC_DNS only supports HTTP, TLS, "
                    f"GRPC or HTTP2 ports, got {protocol or 'unset'!r}",
                )


def _check_endpoint(endpoint: Node, ports: dict[str, tuple[str, str]]) -> None:
    address = endpoint.text("address") or ""
    if address.startswith(UNIX_PREFIX):
        if endpoint.has("ports"):
            endpoint.error("ports", "a unix:// endpoint cannot have ports")
        if len(ports) != 1:
            endpoint.error("address", "a unix:// endpoint needs exactly one service port")
    port_map = endpoint.child("ports")
    for name, number in port_map.data.items() if port_map is not None else ():
        path = f"{endpoint.at('ports')}[{name}]"
        if name not in ports:
            endpoint.report.error(path, f"endpoint port {name!r} is not declared in spec.ports")
        problem = port_error(number) if isinstance(number, int) else None
        if problem:
            endpoint.report.error(path, problem)
    check_labels(endpoint, "labels")
