"""VirtualService validation (reference section 4.1), including the two single-object analyses
(unreachable rules, ineffective matches) that Istio returns as admission warnings."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from meshguard.common.findings import Finding
from meshguard.common.resources import Resource
from meshguard.webhook import hosts
from meshguard.webhook.fields import Node, Report
from meshguard.webhook.headers import (
    check_header_matches,
    check_header_operations,
    check_string_match,
    header_name_error,
)
from meshguard.webhook.metadata import check_metadata
from meshguard.webhook.primitives import (
    NANOS_PER_S,
    check_duration,
    check_export_to,
    check_int_percent,
    check_labels,
    check_percent,
    duration_error,
    port_error,
    regex_error,
)

MESH = "mesh"
RETRY_POLICIES = frozenset(
    {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
        "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
        "envoy-ratelimited", "http3-post-connect-failure",
        "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
    }
)  # fmt: skip
GRPC_CODES = frozenset(
    {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)  # fmt: skip
CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
BODY_ERROR_BYTES = 1024 * 1024
BODY_WARNING_BYTES = 100 * 1024
_SNI_OUTBOUND = re.compile(r"outbound_\.\d+_\._\.(.+)")
_GATEWAY_NAME_PART = hosts.is_lower_label
_EXCLUSIVE = (
    ("route", "redirect"),
    ("fault", "redirect"),
    ("rewrite", "redirect"),
    ("directResponse", "route"),
    ("directResponse", "fault"),
    ("directResponse", "rewrite"),
    ("directResponse", "redirect"),
)
_MIRROR_FIELDS = frozenset({"mirror", "mirrors", "mirrorPercentage", "mirrorPercent"})
AUTHORITY_ONCE = (
    "the authority may only be rewritten once (rewrite.authority or one :authority/host "
    "header operation)"
)


def validate_virtual_service(resource: Resource) -> list[Finding]:
    report = Report()
    check_metadata(resource, report)
    spec = Node(resource.spec, "spec", report)
    _VirtualService(spec, resource.metadata.namespace).check()
    return report.findings


class _VirtualService:
    """One validation pass; holds what several rules need (hosts, gateway binding)."""

    def __init__(self, spec: Node, namespace: str) -> None:
        self.spec = spec
        self.namespace = namespace
        self.hosts = [h for _, h in spec.strings("hosts")]
        self.gateways = [g for _, g in spec.strings("gateways")]
        self.delegate = not spec.array("hosts")
        self.mesh_bound = not self.gateways or MESH in self.gateways
        self.gateway_only = bool(self.gateways) and MESH not in self.gateways

    def check(self) -> None:
        spec = self.spec
        if not any(spec.array(k) for k in ("http", "tcp", "tls")):
            spec.error("", "at least one of http, tcp or tls routes must be provided")
        if self.delegate:
            for key in ("gateways", "tls", "tcp"):
                if spec.array(key):
                    spec.error(key, f"a delegate VirtualService (no hosts) must not set {key}")
        self._check_hosts()
        _check_gateway_names(spec, "gateways")
        check_export_to(spec, self.namespace)
        for _, rule in spec.children("http"):
            self._check_http(rule)
        _check_http_analysis(spec)
        for _, rule in spec.children("tls"):
            self._check_tls(rule)
        for _, rule in spec.children("tcp"):
            self._check_tcp(rule)

    def _check_hosts(self) -> None:
        entries = list(self.spec.strings("hosts"))
        for path, host in entries:
            problem = hosts.wildcard_domain_or_ip_error(host)
            if problem and not (self.gateway_only and self._sni_form(host)):
                self.spec.report.error(path, problem)
            if host == "*" and self.mesh_bound:
                self.spec.report.error(
                    path,
                    "wildcard host '*' is not allowed for a VirtualService bound to the mesh "
                    "(set gateways without 'mesh')",
                )
        for later, (path, host) in enumerate(entries):
            for earlier_path, earlier in entries[:later]:
                if hosts.overlap(earlier, host):
                    self.spec.report.error(
                        path, f"duplicate host {host!r} (overlaps {earlier!r} at {earlier_path})"
                    )
                    break

    @staticmethod
    def _sni_form(host: str) -> bool:
        match = _SNI_OUTBOUND.fullmatch(host)
        return match is not None and hosts.wildcard_domain_error(match.group(1)) is None

    # ---- http ---------------------------------------------------------------------------

    def _check_http(self, rule: Node) -> None:
        present = {key for key, value in rule.data.items() if value is not None}
        has = present.__contains__  # Node.has for every field, read once
        if has("delegate"):
            for key in ("route", "redirect"):
                if has(key):
                    rule.error(key, f"an HTTP rule with delegate cannot also set {key}")
            if self.delegate:
                rule.error("delegate", "a delegate VirtualService cannot delegate again")
            delegate = rule.child("delegate")
            if delegate is not None and not delegate.text("name"):
                delegate.error("name", "delegate name is required")
        elif not (has("route") or has("redirect") or has("directResponse")):
            rule.error("", "an HTTP rule needs one of route, redirect or directResponse")
        for first, second in _EXCLUSIVE:
            if has(first) and has(second):
                rule.error(second, f"an HTTP rule cannot have both {first} and {second}")
        for _, match in rule.children("match"):
            self._check_http_match(match)
        self._check_destinations(rule, "route")
        authority = _rewrites_authority(rule) + check_header_operations(rule, "headers")
        if authority > 1:
            rule.error("headers", AUTHORITY_ONCE)
        for _, weighted in rule.children("route"):
            extra = check_header_operations(weighted, "headers")
            if extra and authority + extra > 1:
                weighted.error("headers", AUTHORITY_ONCE)
        if not present.isdisjoint(_MIRROR_FIELDS):
            self._check_mirrors(rule)
        check_duration(rule, "timeout")
        # Each check below starts from its field and does nothing when it is absent.
        if has("retries"):
            self._check_retries(rule.child("retries"))
        if has("redirect"):
            self._check_redirect(rule)
        if has("rewrite"):
            self._check_rewrite(rule.child("rewrite"))
        if has("directResponse"):
            self._check_direct_response(rule.child("directResponse"))
        if has("fault"):
            self._check_fault(rule.child("fault"))
        if has("corsPolicy"):
            self._check_cors(rule.child("corsPolicy"))

    def _check_http_match(self, match: Node) -> None:
        data = match.data  # a match sets few of its fields: absent ones cost no call
        for key in ("headers", "withoutHeaders"):
            if key not in data:
                continue
            claims = check_header_matches(match, key, allow_claims=True)
            if claims and not self.gateway_only:
                for path in claims:
                    match.report.error(
                        path,
                        "JWT claim based routing is only supported on gateways "
                        "(bind the VirtualService to gateways only, without 'mesh')",
                    )
        for key in ("scheme", "method", "authority"):
            string_match = match.child(key)
            if string_match is not None:
                check_string_match(string_match, allow_empty_prefix=False)
        uri = match.child("uri")
        if uri is not None:
            check_string_match(uri, allow_empty_prefix=True)
        params = match.child("queryParams") if "queryParams" in data else None
        for name in list(params.data) if params is not None else []:
            value = params.data[name] if params is not None else None
            if isinstance(value, dict) and params is not None:
                check_string_match(
                    Node(value, f"{params.path}[{name}]", params.report), allow_empty_prefix=False
                )
        if "port" in data:
            _check_port(match, "port")
        if "sourceLabels" in data:
            check_labels(match, "sourceLabels")
        if "gateways" in data:
            _check_gateway_names(match, "gateways")
        source_ns = match.text("sourceNamespace")
        if source_ns is not None and not hosts.is_lower_label(source_ns):
            match.error("sourceNamespace", f"sourceNamespace {source_ns!r} must be a DNS label")

    def _check_destinations(self, rule: Node, key: str) -> None:
        routes = list(rule.children(key))
        total = 0
        for _, weighted in routes:
            destination = weighted.child("destination")
            if destination is None:
                weighted.error("destination", "destination is required")
            else:
                _check_destination(destination)
            weight = weighted.integer("weight")
            if weight is not None:
                if weight < 0:
                    weighted.error("weight", f"weight must not be negative, got {weight}")
                total += max(weight, 0)
        if len(routes) > 1 and total == 0:
            rule.error(
                key,
                "total destination weight is 0: with several destinations set weights "
                "(they need not sum to 100)",
            )

    def _check_mirrors(self, rule: Node) -> None:
        if rule.has("mirror") and rule.has("mirrors"):
            rule.error("mirrors", "mirror and mirrors are mutually exclusive")
        mirror = rule.child("mirror")
        if mirror is not None:
            _check_destination(mirror)
        check_percent(rule, "mirrorPercentage")
        if rule.has("mirrorPercent"):
            check_int_percent(rule, "mirrorPercent")
            rule.warn("mirrorPercent", "mirrorPercent is deprecated, use mirrorPercentage")
        for _, each in rule.children("mirrors"):
            destination = each.child("destination")
            if destination is None:
                each.error("destination", "mirror destination is required")
            else:
                _check_destination(destination)
            check_percent(each, "percentage")

    def _check_retries(self, retries: Node | None) -> None:
        if retries is None:
            return
        attempts = retries.integer("attempts") or 0
        if attempts < 0:
            retries.error("attempts", f"attempts must not be negative, got {attempts}")
        if attempts == 0:
            for key in ("perTryTimeout", "retryOn", "retryRemoteLocalities"):
                if retries.has(key):
                    retries.error(
                        key, f"{key} is set but attempts is 0 (retries disabled): set attempts"
                    )
        check_duration(retries, "perTryTimeout")
        backoff = retries.child("backoff")
        if backoff is not None:
            check_duration(backoff, "baseInterval")
            check_duration(backoff, "maxInterval")
        check_duration(retries, "backoff")
        retry_on = retries.text("retryOn")
        for policy in retry_on.split(",") if retry_on else []:
            name = policy.strip()
            if name not in RETRY_POLICIES and not name.isdigit():
                retries.error("retryOn", f"unknown retryOn policy {name!r}")

    def _check_redirect(self, rule: Node) -> None:
        redirect = rule.child("redirect")
        if redirect is None:
            return
        if redirect.has("uri") and redirect.has("prefixRewrite"):
            redirect.error("prefixRewrite", "redirect cannot set both uri and prefixRewrite")
        if redirect.has("prefixRewrite"):
            for _, match in rule.children("match"):
                uri = match.child("uri")
                if uri is None or not uri.has("prefix"):
                    redirect.error(
                        "prefixRewrite", "prefixRewrite requires every match to use a uri prefix"
                    )
                    break
        if not any(
            redirect.has(k)
            for k in ("uri", "authority", "scheme", "port", "derivePort", "prefixRewrite")
        ):
            redirect.error("", "redirect must set at least one of uri, authority, scheme or port")
        code = redirect.integer("redirectCode")
        if code is not None and code != 0 and not 300 <= code <= 399:
            redirect.error("redirectCode", f"redirect code must be 3xx, got {code}")
        scheme = redirect.text("scheme")
        if scheme is not None and scheme not in ("http", "https"):
            redirect.error("scheme", f"redirect scheme must be http or https, got {scheme!r}")
        _check_port(redirect, "port")

    @staticmethod
    def _check_rewrite(rewrite: Node | None) -> None:
        if rewrite is None:
            return
        if rewrite.has("uri") and rewrite.has("uriRegexRewrite"):
            rewrite.error("uriRegexRewrite", "rewrite may set only one of uri and uriRegexRewrite")
        if not any(rewrite.has(k) for k in ("uri", "uriRegexRewrite", "authority")):
            rewrite.error("", "rewrite must set at least one of uri, uriRegexRewrite or authority")
        regex_rewrite = rewrite.child("uriRegexRewrite")
        if regex_rewrite is not None:
            if regex_rewrite.text("match") is None or regex_rewrite.text("rewrite") is None:
                regex_rewrite.error("", "uriRegexRewrite needs both match and rewrite")
            else:
                problem = regex_error(regex_rewrite.data["match"])
                if problem:
                    regex_rewrite.error("match", problem)

    @staticmethod
    def _check_direct_response(response: Node | None) -> None:
        if response is None:
            return
        status = response.integer("status")
        if status is None or not 200 <= status <= 600:
            response.error("status", f"directResponse status must be in 200..600, got {status}")
        body = response.child("body")
        if body is None:
            return
        size = _body_size(body)
        if size > BODY_ERROR_BYTES:
            body.error("", f"directResponse body is {size} bytes, at most 1MB is allowed")
        elif size > BODY_WARNING_BYTES:
            body.warn("", f"directResponse body is {size} bytes; bodies over 100KB are slow")

    @staticmethod
    def _check_fault(fault: Node | None) -> None:
        if fault is None:
            return
        abort, delay = fault.child("abort"), fault.child("delay")
        if abort is None and delay is None:
            fault.error("", "fault needs abort and/or delay")
        if abort is not None:
            check_percent(abort, "percentage")
            status = abort.integer("httpStatus")
            if status is not None and not 200 <= status <= 600:
                abort.error("httpStatus", f"abort httpStatus must be in 200..600, got {status}")
            grpc = abort.text("grpcStatus")
            if grpc is not None and grpc not in GRPC_CODES:
                abort.error(
                    "grpcStatus", f"unknown gRPC status {grpc!r} (use a name such as UNAVAILABLE)"
                )
            if abort.has("http2Error"):
                abort.error("http2Error", "HTTP/2 abort fault injection is not supported")
        if delay is not None:
            check_percent(delay, "percentage")
            check_int_percent(delay, "percent")
            check_duration(delay, "fixedDelay")
            if delay.has("exponentialDelay"):
                delay.error("exponentialDelay", "exponentialDelay is not supported")

    @staticmethod
    def _check_cors(cors: Node | None) -> None:
        if cors is None:
            return
        for _, origin in cors.children("allowOrigins"):
            if not origin.keys():
                origin.error("", "allowOrigins entries must set exact, prefix or regex")
            for kind in ("exact", "prefix", "regex"):
                if origin.text(kind) == "":
                    origin.error("", f"{kind!r} in allowOrigins must not be empty")
            check_string_match(origin, allow_empty_prefix=False)
        for path, method in cors.strings("allowMethods"):
            if method not in CORS_METHODS:
                cors.report.error(path, f"unsupported CORS method {method!r}")
        for key in ("allowHeaders", "exposeHeaders"):
            for path, name in cors.strings(key):
                problem = None if name == "*" else header_name_error(name)
                if problem:
                    cors.report.error(path, problem)
        max_age = cors.text("maxAge")
        if max_age is not None:
            problem = duration_error(max_age, whole=NANOS_PER_S)
            if problem:
                cors.error("maxAge", problem)

    # ---- tls / tcp ----------------------------------------------------------------------

    def _check_tls(self, rule: Node) -> None:
        matches = list(rule.children("match"))
        if not matches:
            rule.error("match", "a TLS route needs at least one match")
        if not rule.array("route"):
            rule.error("route", "a TLS route needs at least one route")
        for _, match in matches:
            sni_hosts = list(match.strings("sniHosts"))
            if not sni_hosts:
                match.error("sniHosts", "a TLS match needs at least one sniHosts entry")
            for path, sni in sni_hosts:
                synthetic = self.gateway_only and self._sni_form(sni)
                if not synthetic and hosts.wildcard_domain_error(sni) is not None:
                    if hosts.is_ip(sni):
                        match.report.warn(
                            path,
                            f"IP address {sni!r} used as SNI host: clients "
                            "do not send IP addresses in SNI",
                        )
                        continue
                    match.report.error(path, hosts.wildcard_domain_error(sni) or "")
                    continue
                if not self._covered(sni):
                    match.report.error(
                        path,
                        f"SNI host {sni!r} is not matched by any of the VirtualService "
                        f"hosts {self.hosts}",
                    )
            self._check_l4_match(match)
        self._check_destinations(rule, "route")

    def _check_tcp(self, rule: Node) -> None:
        if not rule.array("route"):
            rule.error("route", "a TCP route needs a route")
        for _, match in rule.children("match"):
            self._check_l4_match(match)
        self._check_destinations(rule, "route")

    def _check_l4_match(self, match: Node) -> None:
        for path, subnet in match.strings("destinationSubnets"):
            if not hosts.is_cidr_or_ip(subnet):
                match.report.error(path, f"{subnet!r} is not an IP address or CIDR")
        _check_port(match, "port")
        check_labels(match, "sourceLabels")
        _check_gateway_names(match, "gateways")
        source_ns = match.text("sourceNamespace")
        if source_ns is not None and not hosts.is_lower_label(source_ns):
            match.error("sourceNamespace", f"sourceNamespace {source_ns!r} must be a DNS label")

    def _covered(self, sni: str) -> bool:
        for host in self.hosts:
            expanded = f"{host}.{self.namespace}.svc.cluster.local"
            if hosts.covers(host, sni) or (
                hosts.is_short_name(host) and hosts.covers(expanded, sni)
            ):
                return True
        return False


def _check_destination(destination: Node) -> None:
    host = destination.text("host")
    if host is not None:
        problem = (
            f"destination host {host!r} is not allowed"
            if host == "*"
            else hosts.wildcard_domain_error(host)
        )
        if problem:
            destination.error("host", problem)
    subset = destination.text("subset")
    if subset is not None and subset and not hosts.is_lower_label(subset):
        destination.error("subset", f"subset {subset!r} must be a DNS-1123 label")
    port = destination.child("port")
    if port is not None:
        _check_port(port, "number")


def _check_port(node: Node, key: str) -> None:
    problem = port_error(node.integer(key))
    if problem:
        node.error(key, problem)


def _check_gateway_names(node: Node, key: str) -> None:
    for path, name in node.strings(key):
        namespace, slash, gateway = name.partition("/")
        if not slash:
            if "." in name:
                gw, _, ns = name.partition(".")
                node.report.warn(
                    path,
                    f"legacy gateway reference {name!r}; prefer namespace/name: "
                    f"'{ns.partition('.')[0]}/{gw}'",
                )
            problem = hosts.fqdn_error(name)
            if problem:
                node.report.error(path, problem)
        elif not namespace or not gateway:
            node.report.error(path, f"gateway {name!r}: namespace and name must be non-empty")
        elif not _GATEWAY_NAME_PART(namespace):
            node.report.error(path, f"gateway {name!r}: namespace {namespace!r} is not a DNS label")
        elif not _GATEWAY_NAME_PART(gateway):
            node.report.error(path, f"gateway {name!r}: name {gateway!r} is not a DNS label")


def _rewrites_authority(rule: Node) -> int:
    rewrite = rule.child("rewrite")
    return 1 if rewrite is not None and rewrite.text("authority") else 0


def _body_size(body: Node) -> int:
    text = body.text("string")
    if text is not None:
        return len(text.encode())
    raw = body.text("bytes")
    if raw is None:
        return 0
    try:
        return len(base64.b64decode(raw, validate=False))
    except (binascii.Error, ValueError):
        return len(raw)


# ---- single-object analysis (warnings) ---------------------------------------------------


_CANONICAL = json.JSONEncoder(sort_keys=True)  # json.dumps would build one per call
_NOT_COMPARED = frozenset({"name", "uri"})  # a match's name never matters; uri is compared apart


def _check_http_analysis(spec: Node) -> None:
    """Rules after a catch-all, rules whose matches all repeat earlier ones, shadowed matches."""
    seen: list[_Seen] = []
    catch_all: str | None = None
    for _, rule in spec.children("http"):
        matches = [m for m in (rule.array("match") or []) if isinstance(m, dict)]
        if catch_all is not None:
            rule.warn(
                "",
                f"rule is unreachable: the earlier rule at {catch_all} has no match "
                "and takes all traffic",
            )
            continue
        if not matches:
            catch_all = rule.path
            continue
        repeated = 0
        for index, match in enumerate(matches):
            path = f"{rule.at('match')}[{index}]"
            current = _Seen.of(path, match)
            earlier = current.shadowed_by(seen)
            if earlier is not None:
                repeated += 1
                if len(matches) > 1:
                    rule.report.warn(path, f"match is ineffective: {earlier} already matches it")
            seen.append(current)
        if repeated == len(matches):
            rule.warn(
                "", "rule is unreachable: every match repeats or is shadowed by an earlier rule"
            )


class _Seen:
    """A match already in effect, with the canonical forms the shadowing test compares."""

    __slots__ = ("key", "path", "prefix", "rest", "uri_value")

    def __init__(
        self, path: str, key: tuple[str, str | None], rest: str, prefix: str | None, uri: str | None
    ):
        self.path, self.key, self.rest, self.prefix, self.uri_value = path, key, rest, prefix, uri

    @classmethod
    def of(cls, path: str, match: dict[str, Any]) -> _Seen:
        uri = match.get("uri")
        prefix = uri_value = None
        if isinstance(uri, dict):
            if list(uri) == ["prefix"] and isinstance(uri["prefix"], str):
                prefix = uri["prefix"]
            value = uri.get("prefix", uri.get("exact"))
            uri_value = value if isinstance(value, str) else None
        rest = _CANONICAL.encode({k: v for k, v in match.items() if k not in _NOT_COMPARED})
        # Equal matches (names aside) are equal in everything but the uri and in the uri:
        # the key pairs the rest with the uri's own form rather than encoding it all again.
        key = (rest, _CANONICAL.encode(uri) if "uri" in match else None)
        return cls(path, key, rest, prefix, uri_value)

    def shadowed_by(self, seen: list[_Seen]) -> str | None:
        for earlier in seen:
            if earlier.key == self.key:
                return earlier.path
            if (
                earlier.prefix is not None
                and self.uri_value is not None
                and earlier.rest == self.rest
                and self.uri_value.startswith(earlier.prefix)
            ):
                return earlier.path
        return None
