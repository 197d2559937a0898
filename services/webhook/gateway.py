"""Gateway validation (reference section 4.3)."""

from __future__ import annotations

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.fields import Node, Report
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import (
    HTTP_PROTOCOLS,
    TLS_PROTOCOLS,
    check_labels,
    port_error,
    port_name_error,
    protocol_error,
)
from meshguard.webhook.servertls import (
    PASSTHROUGH_MODES,
    certificate_fields,
    check_server_tls,
    mode_of,
)

UNIX_PREFIX = "unix://"


def validate_gateway(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    name = resource.metadata.name
    if name and not hosts.is_lower_label(name):
        report.error("metadata.name", f"gateway name {name!r} must be a DNS-1123 label (no dots)")
    spec = Node(resource.spec, "spec", report)
    servers = list(spec.children("servers"))
    if not servers:
        spec.error("servers", "a gateway must have at least one server")
    port_names: dict[str, str] = {}
    for _, server in servers:
        check_server(server)
        port = server.child("port")
        port_name = port.text("name") if port is not None else None
        if port is not None and port_name:
            if port_name in port_names:
                port.error(
                    "name", f"port name {port_name!r} is already used by {port_names[port_name]}"
                )
            else:
                port_names[port_name] = port.path
    check_labels(spec, "selector")
    return report.findings


def check_server(server: Node) -> None:
    hosts_list = list(server.strings("hosts"))
    if not hosts_list:
        server.error("hosts", "a server needs at least one host")
    for path, value in hosts_list:
        problem, _ = hosts.namespaced_host_error(value, require_namespace=False, allow_tilde=False)
        if problem:
            server.report.error(path, problem)
    bind = server.text("bind")
    unix = bool(bind and bind.startswith(UNIX_PREFIX))
    if bind is not None and not unix and not hosts.is_ip(bind):
        server.error("bind", f"bind {bind!r} must be an IP address or unix://<absolute path>")
    if unix and bind is not None and not bind.removeprefix(UNIX_PREFIX).startswith("/"):
        server.error("bind", f"unix bind {bind!r} must use an absolute path")
    port = server.child("port")
    protocol = ""
    if port is None:
        server.error("port", "server port is required")
    else:
        protocol = _check_port(port, unix=unix)
    tls = server.child("tls")
    if protocol in TLS_PROTOCOLS:
        if tls is None:
            server.error("tls", f"a {protocol} server requires tls settings")
    elif tls is not None and protocol in HTTP_PROTOCOLS:
        if mode_of(tls) not in PASSTHROUGH_MODES or certificate_fields(tls):
            server.error(
                "tls",
                "a plain-text HTTP server may only use tls for httpsRedirect "
                "(no mode or certificates)",
            )
        return
    elif tls is not None and protocol:
        server.error("tls", f"a {protocol} server cannot carry tls settings")
        return
    if tls is not None:
        if tls.flag("httpsRedirect"):
            tls.warn("httpsRedirect", "httpsRedirect only has an effect on HTTP servers")
        check_server_tls(tls)


def _check_port(port: Node, *, unix: bool) -> str:
    number = port.integer("number")
    problem = port_error(number, allow_zero=unix)
    if problem:
        port.error("number", problem)
    if unix and number:
        port.error("number", "a unix:// bind requires port number 0")
    name = port.text("name")
    if not name:
        port.error("name", "port name is required")
    else:
        problem = port_name_error(name)
        if problem:
            port.error("name", problem)
    if port.has("targetPort"):
        port.error("targetPort", "targetPort has no effect on gateways and is not allowed")
    protocol = port.text("protocol")
    if not protocol:
        port.error("protocol", "port protocol is required")
        return ""
    problem = protocol_error(protocol)
    if problem:
        port.error("protocol", problem)
        return ""
    return protocol.upper()
