"""Server-side TLS settings (``ServerTLSSettings``): Gateway servers and Sidecar ingress."""

from __future__ import annotations

from meshguard.webhook.fields import Node

CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
        "AES256-SHA", "DES-CBC3-SHA",
    }
)  # fmt: skip
CERTIFICATE_FIELDS = (
    "serverCertificate",
    "privateKey",
    "caCertificates",
    "credentialName",
    "credentialNames",
    "tlsCertificates",
)
PASSTHROUGH_MODES = ("PASSTHROUGH", "AUTO_PASSTHROUGH")


def mode_of(tls: Node) -> str:
    return tls.text("mode") or "PASSTHROUGH"


def certificate_fields(tls: Node) -> list[str]:
    return [k for k in CERTIFICATE_FIELDS if tls.has(k)]


def check_server_tls(tls: Node) -> None:
    """Certificate sources and mode-specific requirements of a TLS-terminating server."""
    mode = mode_of(tls)
    if mode == "ISTIO_MUTUAL":
        for key in certificate_fields(tls):
            tls.error(key, f"ISTIO_MUTUAL uses the mesh certificates and cannot set {key}")
    elif mode in PASSTHROUGH_MODES:
        for key in certificate_fields(tls):
            tls.warn(key, f"{mode} does not terminate TLS: {key} is ignored")
    else:
        _check_sources(tls, mode)
    if tls.has("caCrl"):
        if tls.has("credentialName"):
            tls.error("caCrl", "caCrl cannot be combined with credentialName")
        if mode == "SIMPLE":
            tls.error("caCrl", "caCrl is only meaningful with MUTUAL or OPTIONAL_MUTUAL")
    _check_ciphers(tls)
    version = tls.text("minProtocolVersion")
    if version in ("TLSV1_0", "TLSV1_1") and not tls.array("cipherSuites"):
        tls.warn(
            "minProtocolVersion",
            f"{version} without cipherSuites uses Envoy's defaults, "
            "which no longer include ciphers for TLS 1.0/1.1",
        )


def _check_sources(tls: Node, mode: str) -> None:
    sources = [
        key
        for key, present in (
            ("credentialName", tls.has("credentialName")),
            ("credentialNames", bool(tls.array("credentialNames"))),
            ("serverCertificate/privateKey", tls.has("serverCertificate") or tls.has("privateKey")),
            ("tlsCertificates", bool(tls.array("tlsCertificates"))),
        )
        if present
    ]
    if len(sources) > 1:
        tls.error("", f"only one certificate source may be set, got {', '.join(sources)}")
    if tls.has("credentialName") or tls.array("credentialNames"):
        return
    certificates = list(tls.children("tlsCertificates"))
    if len(certificates) > 2:
        tls.warn(
            "tlsCertificates",
            "more than 2 tlsCertificates: only one RSA and one ECDSA certificate are used",
        )
    entries = [node for _, node in certificates] or [tls]
    for entry in entries:
        for key in ("serverCertificate", "privateKey"):
            if not entry.text(key):
                entry.error(key, f"{mode} TLS without credentialName requires {key}")
    if mode in ("MUTUAL", "OPTIONAL_MUTUAL") and not tls.text("caCertificates"):
        tls.error("caCertificates", f"{mode} TLS without credentialName requires caCertificates")


def _check_ciphers(tls: Node) -> None:
    seen: set[str] = set()
    for path, suite in tls.strings("cipherSuites"):
        if suite not in CIPHER_SUITES:
            tls.report.warn(path, f"unknown cipher suite {suite!r} is ignored")
        elif suite in seen:
            tls.report.warn(path, f"duplicate cipher suite {suite!r} is ignored")
        seen.add(suite)
