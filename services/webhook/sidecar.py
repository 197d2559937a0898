"""Sidecar validation (reference section 4.5)."""

from __future__ import annotations

import re

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.fields import Node, Report
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import (
    HTTP_PROTOCOLS,
    TLS_PROTOCOLS,
    check_selector,
    port_error,
    port_name_error,
    protocol_error,
)
from meshguard.webhook.servertls import check_server_tls
from meshguard.webhook.trafficpolicy import check_connection_pool

UNIX_PREFIX = "unix://"
SECTIONS = ("ingress", "egress", "outboundTrafficPolicy", "inboundConnectionPool")
_DEFAULT_ENDPOINT = re.compile(r"(?:127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\])?:(\d+)")
_INGRESS_TLS_FORBIDDEN = (
    "subjectAltNames",
    "httpsRedirect",
    "credentialName",
    "credentialNames",
    "tlsCertificates",
)


def validate_sidecar(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    spec = Node(resource.spec, "spec", report)
    if not any(spec.has(k) for k in SECTIONS):
        spec.error("", f"a Sidecar must set at least one of {', '.join(SECTIONS)}")
    check_selector(spec, "workloadSelector", "labels")
    _check_ingress(spec)
    _check_egress(spec)
    _check_outbound(spec.child("outboundTrafficPolicy"))
    pool = spec.child("inboundConnectionPool")
    if pool is not None:
        check_connection_pool(pool)
    return report.findings


def _check_port(port: Node, bind: str | None) -> str:
    """Number, name and protocol of a listener port; returns the upper-case protocol."""
    unix = bool(bind and bind.startswith(UNIX_PREFIX))
    number = port.integer("number")
    problem = port_error(number, allow_zero=unix)
    if problem:
        port.error("number", f"{problem} (0 requires a unix:// bind)" if number == 0 else problem)
    elif unix and number:
        port.error("number", "a unix:// bind requires port number 0")
    name = port.text("name")
    if name:
        problem = port_name_error(name)
        if problem:
            port.error("name", problem)
    if port.has("targetPort"):
        port.error("targetPort", "targetPort is not allowed on Sidecar listeners")
    protocol = port.text("protocol") or ""
    if protocol:
        problem = protocol_error(protocol)
        if problem:
            port.error("protocol", problem)
    return protocol.upper()


def _check_ingress(spec: Node) -> None:
    numbers: dict[int, str] = {}
    for _, listener in spec.children("ingress"):
        port = listener.child("port")
        bind = listener.text("bind")
        if bind is not None and not hosts.is_ip(bind):
            listener.error("bind", f"ingress bind {bind!r} must be an IP address")
        if port is None:
            listener.error("port", "an ingress listener needs a port")
            protocol = ""
        else:
            protocol = _check_port(port, None)
            number = port.integer("number")
            if number is not None:
                if number in numbers:
                    port.error("number", f"port {number} is already used by {numbers[number]}")
                numbers[number] = listener.path
        endpoint = listener.text("defaultEndpoint")
        if endpoint is not None:
            _check_default_endpoint(listener, endpoint)
        tls = listener.child("tls")
        if tls is not None:
            _check_ingress_tls(listener, tls, protocol)
        pool = listener.child("connectionPool")
        if pool is not None:
            check_connection_pool(pool)
            if pool.has("http") and protocol and protocol not in HTTP_PROTOCOLS | TLS_PROTOCOLS:
                pool.warn(
                    "http", f"HTTP connection pool settings have no effect on a {protocol} port"
                )


def _check_default_endpoint(listener: Node, endpoint: str) -> None:
    if endpoint.startswith(UNIX_PREFIX):
        if not endpoint.removeprefix(UNIX_PREFIX).startswith("/"):
            listener.error("defaultEndpoint", "a unix:// defaultEndpoint needs an absolute path")
        return
    match = _DEFAULT_ENDPOINT.fullmatch(endpoint)
    if match is None:
        listener.error(
            "defaultEndpoint",
            f"defaultEndpoint {endpoint!r} must be 127.0.0.1:<port>, 0.0.0.0:<port>, "
            "[::1]:<port>, [::]:<port>, :<port> or unix://<absolute path>",
        )
        return
    problem = port_error(int(match.group(1)))
    if problem:
        listener.error("defaultEndpoint", problem)


def _check_ingress_tls(listener: Node, tls: Node, protocol: str) -> None:
    for key in _INGRESS_TLS_FORBIDDEN:
        if tls.has(key):
            tls.error(key, f"{key} is not allowed in Sidecar ingress TLS")
    mode = tls.text("mode")
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        tls.error("mode", f"TLS mode {mode} is not allowed on a Sidecar ingress listener")
    if protocol not in TLS_PROTOCOLS:
        listener.error(
            "tls", f"ingress TLS requires an HTTPS or TLS port, got {protocol or 'unset'}"
        )
    check_server_tls(tls)


def _check_egress(spec: Node) -> None:
    listeners = list(spec.children("egress"))
    ip_ports: dict[tuple[str, int], str] = {}
    unix_binds: set[str] = set()
    for position, (_, listener) in enumerate(listeners):
        port = listener.child("port")
        bind = listener.text("bind")
        if port is None:
            if position != len(listeners) - 1:
                listener.error("port", "an egress listener without port must be the last one")
        else:
            _check_port(port, bind)
            number = port.integer("number")
            if number == 0 and (bind or "").startswith(UNIX_PREFIX):
                mode = listener.text("captureMode") or "DEFAULT"
                if mode not in ("DEFAULT", "NONE"):
                    listener.error(
                        "captureMode", "a unix:// listener needs captureMode DEFAULT or NONE"
                    )
            if bind and bind.startswith(UNIX_PREFIX):
                if bind in unix_binds:
                    listener.error("bind", f"unix bind {bind!r} is used twice")
                unix_binds.add(bind)
            elif number is not None:
                key = (bind or "", number)
                if key in ip_ports:
                    port.error("number", f"port {number} is already used by {ip_ports[key]}")
                ip_ports[key] = listener.path
        if bind is not None and not bind.startswith(UNIX_PREFIX) and not hosts.is_ip(bind):
            listener.error("bind", f"egress bind {bind!r} must be an IP or unix://<path>")
        _check_egress_hosts(listener)


def _check_egress_hosts(listener: Node) -> None:
    entries = list(listener.strings("hosts"))
    if not entries:
        listener.error("hosts", "an egress listener needs at least one host")
    valid = [
        (path, value)
        for path, value in entries
        if not _report(listener, path, _egress_host_error(value))
    ]
    # Coverage by ``ns/*`` does not depend on order: the wildcard may come after the host.
    wildcards = {v.partition("/")[0] for _, v in valid if v.partition("/")[2] == "*"}
    seen: dict[str, str] = {}
    for path, value in valid:
        namespace, _, host = value.partition("/")
        if value in seen:
            listener.report.warn(path, f"duplicate egress host {value!r}")
        elif host != "*" and namespace in wildcards:
            listener.report.warn(
                path, f"egress host {value!r} is already covered by '{namespace}/*'"
            )
        seen[value] = path
    if "*/*" in seen and len(seen) > 1:
        listener.warn("hosts", "'*/*' already selects every host: the other entries are redundant")


def _egress_host_error(value: str) -> str | None:
    return hosts.namespaced_host_error(value, require_namespace=True, allow_tilde=True)[0]


def _report(listener: Node, path: str, problem: str | None) -> bool:
    if problem:
        listener.report.error(path, problem)
    return problem is not None


def _check_outbound(policy: Node | None) -> None:
    if policy is None:
        return
    mode = policy.text("mode") or "REGISTRY_ONLY"
    if mode == "ALLOW_ANY_DYNAMIC_DNS":
        policy.error("mode", "ALLOW_ANY_DYNAMIC_DNS is only supported in the mesh config")
    proxy = policy.child("egressProxy")
    if proxy is None:
        return
    if mode != "ALLOW_ANY":
        policy.error("egressProxy", f"egressProxy is only allowed with mode ALLOW_ANY, got {mode}")
    host = proxy.text("host")
    if not host or hosts.fqdn_error(host):
        proxy.error("host", f"egressProxy host must be an FQDN, got {host!r}")
    port = proxy.child("port")
    if port is None:
        proxy.error("port", "egressProxy port is required")
    else:
        problem = port_error(port.integer("number"))
        if problem:
            port.error("number", problem)
