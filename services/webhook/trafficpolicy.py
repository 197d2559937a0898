"""Traffic policy rules shared by DestinationRule (top level, subsets, port level) and Sidecar
(inbound connection pools): connection pool, outlier detection, load balancer, client TLS."""

from __future__ import annotations

from meshguard.webhook import hosts
from meshguard.webhook.fields import Node
from meshguard.webhook.primitives import check_duration, is_prime, port_error

POLICY_FIELDS = (
    "loadBalancer",
    "connectionPool",
    "outlierDetection",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
    "retryBudget",
)
PORT_POLICY_FIELDS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")
MAGLEV_MAX = 5_000_011
_HTTP_COUNTS = (
    "http1MaxPendingRequests",
    "http2MaxRequests",
    "maxRequestsPerConnection",
    "maxRetries",
    "maxConcurrentStreams",
)


def check_traffic_policy(policy: Node, namespace: str) -> None:
    if not any(policy.has(k) for k in POLICY_FIELDS):
        policy.error("", f"trafficPolicy must set at least one of {', '.join(POLICY_FIELDS)}")
    if policy.has("tunnel") and policy.has("proxyProtocol"):
        policy.error("proxyProtocol", "tunnel and proxyProtocol are mutually exclusive")
    _check_policy_fields(policy, namespace)
    for _, port_policy in policy.children("portLevelSettings"):
        port = port_policy.child("port")
        if port is None:
            port_policy.error("port", "a portLevelSettings entry needs a port")
        else:
            problem = port_error(port.integer("number"))
            if problem:
                port.error("number", problem)
        if not any(port_policy.has(k) for k in PORT_POLICY_FIELDS):
            port_policy.error(
                "", f"a portLevelSettings entry must set one of {', '.join(PORT_POLICY_FIELDS)}"
            )
        _check_policy_fields(port_policy, namespace)
    tunnel = policy.child("tunnel")
    if tunnel is not None:
        _check_tunnel(tunnel)


def _check_policy_fields(policy: Node, namespace: str) -> None:
    pool = policy.child("connectionPool")
    if pool is not None:
        check_connection_pool(pool)
    outlier = policy.child("outlierDetection")
    if outlier is not None:
        _check_outlier(outlier)
    balancer = policy.child("loadBalancer")
    if balancer is not None:
        _check_load_balancer(balancer, has_outlier=outlier is not None)
    tls = policy.child("tls")
    if tls is not None:
        _check_client_tls(tls, namespace)


def check_connection_pool(pool: Node) -> None:
    if not (pool.has("tcp") or pool.has("http")):
        pool.error("", "connectionPool must set tcp or http settings")
    http = pool.child("http")
    if http is not None:
        for key in _HTTP_COUNTS:
            value = http.integer(key)
            if value is not None and value < 0:
                http.error(key, f"{key} must not be negative, got {value}")
        check_duration(http, "idleTimeout")
        if http.flag("useClientProtocol") and http.text("h2UpgradePolicy") == "UPGRADE":
            http.error(
                "useClientProtocol",
                "useClientProtocol cannot be true together with h2UpgradePolicy UPGRADE",
            )
        keepalive = http.child("http2KeepAlive")
        if keepalive is not None:
            for key in ("interval", "timeout"):
                if keepalive.text(key) is None:
                    keepalive.error(key, f"http2KeepAlive needs both interval and timeout: {key}")
                check_duration(keepalive, key)
    tcp = pool.child("tcp")
    if tcp is not None:
        connections = tcp.integer("maxConnections")
        if connections is not None and connections < 0:
            tcp.error("maxConnections", f"maxConnections must not be negative, got {connections}")
        for key in ("connectTimeout", "maxConnectionDuration"):
            check_duration(tcp, key)
        check_duration(tcp, "idleTimeout", allow_zero=True)
        keepalive = tcp.child("tcpKeepalive")
        if keepalive is not None:
            check_duration(keepalive, "time")
            check_duration(keepalive, "interval")


def _check_outlier(outlier: Node) -> None:
    check_duration(outlier, "baseEjectionTime")
    check_duration(outlier, "interval")
    for key in ("maxEjectionPercent", "minHealthPercent"):
        value = outlier.integer(key)
        if value is not None and not 0 <= value <= 100:
            outlier.error(key, f"{key} must be in the range 0..100, got {value}")
    if outlier.has("consecutiveLocalOriginFailures") and not outlier.flag(
        "splitExternalLocalOriginErrors"
    ):
        outlier.error(
            "consecutiveLocalOriginFailures",
            "consecutiveLocalOriginFailures requires splitExternalLocalOriginErrors: true",
        )
    if outlier.has("consecutiveErrors"):
        outlier.warn(
            "consecutiveErrors",
            "consecutiveErrors is deprecated, use consecutive5xxErrors or consecutiveGatewayErrors",
        )


def _check_load_balancer(balancer: Node, *, has_outlier: bool) -> None:
    hashing = balancer.child("consistentHash")
    if hashing is not None:
        _check_consistent_hash(hashing)
    if balancer.has("localityLbSetting") and balancer.has("zoneAwareLbSetting"):
        balancer.error(
            "zoneAwareLbSetting", "localityLbSetting and zoneAwareLbSetting are mutually exclusive"
        )
    locality = balancer.child("localityLbSetting")
    if locality is not None:
        _check_locality(locality)
        if (locality.array("failover") or balancer.array("failoverPriority")) and not has_outlier:
            locality.warn("", "locality failover has no effect without outlierDetection")
    elif balancer.array("failoverPriority") and not has_outlier:
        balancer.warn("failoverPriority", "failoverPriority has no effect without outlierDetection")
    warmup = balancer.child("warmup")
    if warmup is not None:
        if warmup.text("duration") is None:
            warmup.error("duration", "warmup needs a duration")
        check_duration(warmup, "duration")
        minimum = warmup.number("minimumPercent")
        if minimum is not None and not 0 <= minimum <= 100:
            warmup.error("minimumPercent", f"minimumPercent must be in 0..100, got {minimum}")
        aggression = warmup.number("aggression")
        if aggression is not None and aggression <= 0:
            warmup.error("aggression", f"aggression must be greater than 0, got {aggression}")
    check_duration(balancer, "warmupDurationSecs")


def _check_consistent_hash(hashing: Node) -> None:
    cookie = hashing.child("httpCookie")
    if cookie is not None:
        if not cookie.text("name"):
            cookie.error("name", "httpCookie name is required")
        check_duration(cookie, "ttl", allow_zero=True)
        names: set[str] = set()
        for _, attribute in cookie.children("attributes"):
            name = attribute.text("name")
            if not name:
                attribute.error("name", "cookie attribute name must not be empty")
            elif name in names:
                attribute.error("name", f"duplicate cookie attribute {name!r}")
            else:
                names.add(name)
    if hashing.has("minimumRingSize"):
        hashing.warn("minimumRingSize", "minimumRingSize is deprecated, use ringHash")
        for key in ("ringHash", "maglev"):
            if hashing.has(key):
                hashing.error(key, f"the deprecated minimumRingSize cannot be combined with {key}")
    maglev = hashing.child("maglev")
    if maglev is not None:
        size = maglev.integer("tableSize")
        if size is None or size == 0:
            maglev.error("tableSize", "maglev tableSize must be set")
        elif not is_prime(size) or size >= MAGLEV_MAX:
            maglev.error(
                "tableSize", f"maglev tableSize must be a prime below {MAGLEV_MAX}, got {size}"
            )


def _check_locality(locality: Node) -> None:
    if locality.array("distribute") and locality.array("failover"):
        locality.error("failover", "distribute and failover are mutually exclusive")
    sources: list[str] = []
    for _, rule in locality.children("distribute"):
        source = rule.text("from")
        if source is not None:
            problem = _locality_error(source)
            if problem:
                rule.error("from", problem)
            elif any(_locality_overlap(source, s) for s in sources):
                rule.error("from", f"locality {source!r} overlaps an earlier distribute entry")
            sources.append(source)
        targets = rule.child("to")
        if targets is None:
            continue
        total = 0
        for name, weight in targets.data.items():
            path = f"{targets.path}[{name}]"
            problem = _locality_error(str(name))
            if problem:
                targets.report.error(path, problem)
            if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
                targets.report.error(path, f"locality weight must be in 1..100, got {weight!r}")
            elif isinstance(weight, int):
                total += weight
        if total != 100:
            rule.error("to", f"locality distribute weights must total 100, got {total}")
    for _, rule in locality.children("failover"):
        source, target = rule.text("from"), rule.text("to")
        for key, value in (("from", source), ("to", target)):
            if value is not None and ("/" in value or "*" in value):
                rule.error(key, f"failover {key} must be a region (no '/' or '*'), got {value!r}")
        if source is not None and source == target:
            rule.error("to", "failover from and to must be different regions")


def _locality_error(value: str) -> str | None:
    parts = value.split("/")
    if not value or len(parts) > 3 or any(not p for p in parts):
        return f"locality {value!r} must be region[/zone[/subzone]]"
    stars = [i for i, p in enumerate(parts) if "*" in p]
    if stars and (stars != [len(parts) - 1] or parts[-1] != "*"):
        return f"locality {value!r} may only use '*' as its whole last part"
    return None


def _locality_overlap(a: str, b: str) -> bool:
    def covers(general: str, specific: str) -> bool:
        if general.endswith("*"):
            return specific.startswith(general[:-1])
        return general == specific

    return covers(a, b) or covers(b, a)


def _check_client_tls(tls: Node, namespace: str) -> None:
    mode = tls.text("mode") or "DISABLE"
    credential = tls.text("credentialName")
    if credential and credential.startswith("configmap://"):
        ref = credential.removeprefix("configmap://")
        ref_namespace, slash, _ = ref.partition("/")
        if slash and namespace and ref_namespace != namespace:
            tls.error(
                "credentialName",
                "a configmap:// credentialName must be in the DestinationRule's own namespace",
            )
    if tls.flag("insecureSkipVerify"):
        for key in ("caCertificates", "subjectAltNames") + (
            ("credentialName",) if mode == "SIMPLE" else ()
        ):
            if tls.has(key):
                tls.error(key, f"insecureSkipVerify cannot be combined with {key}")
    if mode in ("SIMPLE", "MUTUAL") and credential:
        for key in ("clientCertificate", "privateKey", "caCertificates", "caCrl"):
            if tls.has(key):
                tls.error(key, f"credentialName cannot be combined with {key}")
    if mode == "MUTUAL" and not credential:
        for key in ("clientCertificate", "privateKey"):
            if not tls.text(key):
                tls.error(key, f"MUTUAL TLS without credentialName requires {key}")


def _check_tunnel(tunnel: Node) -> None:
    protocol = tunnel.text("protocol")
    if protocol is not None and protocol.upper() not in ("CONNECT", "POST"):
        tunnel.error("protocol", f"tunnel protocol must be CONNECT or POST, got {protocol!r}")
    target = tunnel.text("targetHost")
    if not target:
        tunnel.error("targetHost", "tunnel targetHost is required")
    elif hosts.fqdn_error(target) and not hosts.is_ip(target):
        tunnel.error("targetHost", f"tunnel targetHost {target!r} must be an FQDN or an IP")
    port = tunnel.integer("targetPort")
    if port is None:
        tunnel.error("targetPort", "tunnel targetPort is required")
    else:
        problem = port_error(port)
        if problem:
            tunnel.error("targetPort", problem)
