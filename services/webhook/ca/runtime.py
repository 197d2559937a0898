"""Assemble the CA process from its settings: issuer, token verifier, gRPC over TLS."""

from __future__ import annotations

import logging
import ssl

import grpc

from meshguard.common.server import ServiceRuntime
from meshguard.webhook.ca.authority import Issuer, generate_root, load_issuer, write_issuer
from meshguard.webhook.ca.issuer_keys import IssuerKeysVerifier
from meshguard.webhook.ca.rootpublisher import RootCertPublisher
from meshguard.webhook.ca.service import SERVICE_NAME, CaPolicy, CertificateService
from meshguard.webhook.ca.settings import CaSettings
from meshguard.webhook.ca.tokenreview import IN_CLUSTER_CA, TokenReviewVerifier
from meshguard.webhook.ca.tokens import TokenVerifier

log = logging.getLogger(__name__)


def load_or_generate_issuer(settings: CaSettings) -> Issuer:
    """The configured issuer; in development, a root generated once and kept in a directory."""
    if settings.ca_cert is not None:
        if settings.ca_key is None:
            raise SystemExit("--ca-cert needs --ca-key")
        return load_issuer(settings.ca_cert, settings.ca_key, settings.root_cert)
    assert settings.generated_root_dir is not None
    cert, key = (
        settings.generated_root_dir / "ca-cert.pem",
        settings.generated_root_dir / "ca-key.pem",
    )
    if cert.exists() and key.exists():
        return load_issuer(cert, key)
    issuer = generate_root(settings.trust_domain)
    write_issuer(issuer, cert, key)
    log.warning("generated a development root CA", extra={"path": str(cert)})
    return issuer


def build_verifier(settings: CaSettings) -> TokenVerifier:
    if settings.token_verifier == "issuer-keys":
        assert settings.issuer_keys is not None
        return IssuerKeysVerifier.from_file(
            settings.issuer_keys, issuer=settings.token_issuer, audience=settings.audience
        )

    return TokenReviewVerifier(
        settings.kube_api, ssl_context=_kube_api_ssl(), audience=settings.audience
    )


def _kube_api_ssl() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(IN_CLUSTER_CA) if IN_CLUSTER_CA.exists() else None)


def build_runtime(settings: CaSettings) -> ServiceRuntime:
    issuer = load_or_generate_issuer(settings)
    service = CertificateService(
        issuer,
        build_verifier(settings),
        CaPolicy(settings.trust_domain, settings.default_ttl, settings.max_ttl),
    )
    key_pem, chain_pem = issuer.serving_certificate(list(settings.serving_hosts))
    credentials = grpc.ssl_server_credentials([(key_pem, chain_pem)])
    runtime = ServiceRuntime("ca", admin_port=settings.admin_port, host=settings.host)
    runtime.add_grpc(settings.grpc_port, service.register, [SERVICE_NAME], credentials=credentials)
    if settings.publish_root_cert:
        publisher = RootCertPublisher(
            settings.kube_api,
            issuer.root_bundle,
            ssl_context=_kube_api_ssl(),
            selectors=settings.publish_root_cert_selectors,
        )
        runtime.add_background(publisher.run)
    return runtime
