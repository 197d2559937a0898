"""Webhook serving certificate, caBundle and mesh CA as the chart renders them.

Without cert-manager, the chart generates the webhook CA and serving certificate; the caBundle of
both webhook configurations must verify the certificate the webhook pods serve, for the name the
API server dials. With cert-manager, cert-manager's CA injector fills the caBundle instead.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from meshguard.common import spiffe
from meshguard.webhook.ca.authority import load_issuer
from meshguard.webhook.server import WebhookHttp
from tests.chart.helm import NAMESPACE, container, find, one

Rendered = dict[str, list[dict[str, Any]]]
WEBHOOK_CONFIGS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def _verify_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raises InvalidSignature unless ``issuer``'s key signed ``cert``."""
    key = issuer.public_key()
    assert cert.signature_hash_algorithm is not None
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )


def _serving_certificate(manifests: list[dict[str, Any]]) -> x509.Certificate:
    deployment = one(manifests, "Deployment", "-webhook")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    secret_name = next(v["secret"]["secretName"] for v in volumes if v["name"] == "webhook-tls")
    secret = next(s for s in find(manifests, "Secret") if s["metadata"]["name"] == secret_name)
    return x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))


def test_ca_bundle_verifies_the_serving_certificate(rendered: Rendered) -> None:
    manifests = rendered["defaults"]
    serving = _serving_certificate(manifests)
    service = one(manifests, "Service", "-webhook")
    dialled = f"{service['metadata']['name']}.{NAMESPACE}.svc"
    now = datetime.datetime.now(datetime.UTC)
    for kind in WEBHOOK_CONFIGS:
        config = one(manifests, kind)
        for hook in config["webhooks"]:
            client = hook["clientConfig"]
            assert client["service"]["name"] == service["metadata"]["name"]
            assert client["service"]["namespace"] == NAMESPACE
            assert client["service"]["port"] == 443
            ca = x509.load_pem_x509_certificate(base64.b64decode(client["caBundle"]))
            _verify_signed_by(serving, ca)
            assert serving.issuer == ca.subject
            assert ca.not_valid_after_utc > now + datetime.timedelta(days=365)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert dialled in names.get_values_for_type(x509.DNSName)
    assert serving.not_valid_before_utc <= now < serving.not_valid_after_utc


def test_a_foreign_ca_does_not_verify_the_serving_certificate(rendered: Rendered) -> None:
    """Two renders generate two CAs: the check above really compares keys."""
    mine = _serving_certificate(rendered["defaults"])
    other = one(rendered["hpa"], "ValidatingWebhookConfiguration")["webhooks"][0]
    other_ca = x509.load_pem_x509_certificate(base64.b64decode(other["clientConfig"]["caBundle"]))
    with pytest.raises(InvalidSignature):
        _verify_signed_by(mine, other_ca)


def test_webhooks_fail_closed_and_skip_their_own_namespace(rendered: Rendered) -> None:
    manifests = rendered["defaults"]
    validating = one(manifests, "ValidatingWebhookConfiguration")["webhooks"][0]
    mutating = one(manifests, "MutatingWebhookConfiguration")["webhooks"][0]
    for hook in (validating, mutating):
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["timeoutSeconds"] == 10
        assert hook["admissionReviewVersions"] == ["v1"]
        excluded = next(
            e
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        )
        assert excluded["operator"] == "NotIn"
        assert NAMESPACE in excluded["values"] and "kube-system" in excluded["values"]
    assert validating["clientConfig"]["service"]["path"] == "/validate"
    groups = set(validating["rules"][0]["apiGroups"])
    assert {"networking.istio.io", "security.istio.io", "meshguard.io"} <= groups
    assert mutating["clientConfig"]["service"]["path"] == "/mutate"
    assert mutating["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert mutating["reinvocationPolicy"] == "Never"
    assert {"key": "meshguard-injection", "operator": "In", "values": ["enabled"]} in mutating[
        "namespaceSelector"
    ]["matchExpressions"]


def test_injection_and_validation_can_be_turned_off(rendered: Rendered) -> None:
    assert not find(rendered["injection-off"], "MutatingWebhookConfiguration")
    assert find(rendered["injection-off"], "ValidatingWebhookConfiguration")
    assert not find(rendered["validation-off"], "ValidatingWebhookConfiguration")
    assert find(rendered["validation-off"], "MutatingWebhookConfiguration")


@pytest.mark.parametrize("toggle", ["cert-manager", "cert-manager-issuer"])
def test_cert_manager_issues_the_serving_certificate_and_injects_the_ca(
    rendered: Rendered, toggle: str
) -> None:
    manifests = rendered[toggle]
    certificates = {c["metadata"]["name"]: c for c in find(manifests, "Certificate")}
    serving = certificates["mg-meshguard-webhook"]
    deployment = one(manifests, "Deployment", "-webhook")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert serving["spec"]["secretName"] == volumes["webhook-tls"]["secret"]["secretName"]
    assert f"mg-meshguard-webhook.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    _assert_mesh_ca_issued_for_the_ca_pods(manifests)
    for kind in WEBHOOK_CONFIGS:
        config = one(manifests, kind)
        annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        assert annotation == f"{NAMESPACE}/mg-meshguard-webhook"
        assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])
    assert not [s for s in find(manifests, "Secret") if s["metadata"]["name"].endswith("-tls")]
    issuers = {i["metadata"]["name"] for i in find(manifests, "Issuer")}
    if toggle == "cert-manager":
        assert issuers == {"mg-meshguard-selfsigned", "mg-meshguard-ca"}
        assert serving["spec"]["issuerRef"]["name"] == "mg-meshguard-ca"
    else:
        assert issuers == set()
        assert serving["spec"]["issuerRef"] == {
            "name": "corp-ca",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }


def _assert_mesh_ca_issued_for_the_ca_pods(manifests: list[dict[str, Any]]) -> None:
    mesh_ca = one(manifests, "Certificate", "-mesh-ca")
    assert mesh_ca["spec"]["isCA"] is True
    pod = one(manifests, "Deployment", "-ca")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mesh_ca["spec"]["secretName"] == volumes["mesh-ca"]["secret"]["secretName"]


def test_cert_manager_issues_the_mesh_ca_without_the_webhook(rendered: Rendered) -> None:
    manifests = rendered["ca-only"]
    assert not find(manifests, "Certificate", "-webhook")
    _assert_mesh_ca_issued_for_the_ca_pods(manifests)
    args = container(one(manifests, "Deployment", "-ca"))["args"]
    assert "--root-cert=/etc/meshguard/mesh-ca/ca.crt" in args


def test_mesh_ca_secret_loads_as_the_ca_service_issuer(rendered: Rendered, tmp_path: Path) -> None:
    secret = one(rendered["defaults"], "Secret", "-mesh-ca")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for key in ("tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    issuer = load_issuer(tmp_path / "tls.crt", tmp_path / "tls.key")
    constraints = issuer.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    workload_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(workload_key, hashes.SHA256())
    )
    chain = issuer.sign(
        csr.public_bytes(serialization.Encoding.PEM).decode(),
        spiffe.for_workload("cluster.local", "shop", "web"),
        datetime.timedelta(hours=1),
    )
    leaf = x509.load_pem_x509_certificate(chain.pems[0].encode())
    _verify_signed_by(leaf, issuer.cert)


def test_existing_mesh_ca_secret_is_used_and_not_generated(rendered: Rendered) -> None:
    manifests = rendered["mesh-ca-existing"]
    assert not find(manifests, "Secret", "-mesh-ca")
    volumes = one(manifests, "Deployment", "-ca")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "mesh-ca", "secret": {"secretName": "corp-mesh-ca"}} in volumes
    webhook = one(manifests, "Deployment", "-webhook")["spec"]["template"]["spec"]
    assert all(v["name"] != "mesh-ca" for v in webhook["volumes"]), "only the CA holds its key"


def test_webhook_paths_are_routes_of_the_webhook_server(rendered: Rendered) -> None:
    for kind in WEBHOOK_CONFIGS:
        for hook in one(rendered["defaults"], kind)["webhooks"]:
            assert hook["clientConfig"]["service"]["path"] in WebhookHttp.PATHS
