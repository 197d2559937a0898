"""CertificateService over real gRPC + TLS: issuance, refusals as statuses, the refusal metric."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY

from meshguard.common.protos.meshguard.ca.v1 import ca_pb2, ca_pb2_grpc
from meshguard.webhook.ca.authority import Issuer, generate_root
from meshguard.webhook.ca.issuer_keys import IssuerKeysVerifier
from meshguard.webhook.ca.service import CaPolicy, CertificateService
from meshguard.webhook.ca.tokens import ServiceAccountIdentity
from tests.harness.satokens import ServiceAccountIssuer

SA = ServiceAccountIssuer.create()


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[tuple[ca_pb2_grpc.CertificateServiceStub, Issuer]]:
    issuer = generate_root("cluster.local")
    verifier = IssuerKeysVerifier.from_file(SA.write_jwks(tmp_path / "jwks"), issuer=SA.issuer)
    policy = CaPolicy("cluster.local", datetime.timedelta(hours=24), datetime.timedelta(hours=48))
    server = grpc.aio.server()
    CertificateService(issuer, verifier, policy).register(server)
    key, chain = issuer.serving_certificate(["localhost"])
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, chain)]))
    await server.start()
    credentials = grpc.ssl_channel_credentials(root_certificates=issuer.root_bundle.encode())
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", "localhost")]
    )
    yield ca_pb2_grpc.CertificateServiceStub(channel), issuer
    await channel.close()
    await server.stop(None)


def _refusals(reason: str) -> float:
    value = REGISTRY.get_sample_value("meshguard_ca_refusals_total", {"reason": reason})
    return value or 0.0


async def test_issues_for_the_token_identity(
    ca: tuple[ca_pb2_grpc.CertificateServiceStub, Issuer],
) -> None:
    stub, issuer = ca
    token = SA.token("default", "frontend")
    reply = await stub.CreateCertificate(
        ca_pb2.CreateCertificateRequest(csr=_csr(), ttl_seconds=3600),
        metadata=[("authorization", f"Bearer {token}")],
    )
    assert reply.spiffe_id == "spiffe://cluster.local/ns/default/sa/frontend"
    leaf = x509.load_pem_x509_certificate(reply.cert_chain[0].encode())
    assert reply.cert_chain[-1] == issuer.root_bundle
    lifetime = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=59) < lifetime <= datetime.timedelta(hours=1)
    assert reply.expires_at == int(leaf.not_valid_after_utc.timestamp())
    bundle = await stub.GetRootBundle(ca_pb2.GetRootBundleRequest())
    assert bundle.root_bundle == issuer.root_bundle


async def test_default_ttl_applies_when_none_is_asked(
    ca: tuple[ca_pb2_grpc.CertificateServiceStub, Issuer],
) -> None:
    stub, _ = ca
    reply = await stub.CreateCertificate(
        ca_pb2.CreateCertificateRequest(csr=_csr()),
        metadata=[("authorization", f"Bearer {SA.token('a', 'b')}")],
    )
    leaf = x509.load_pem_x509_certificate(reply.cert_chain[0].encode())
    lifetime = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=23, minutes=59) < lifetime <= datetime.timedelta(hours=24)


@pytest.mark.parametrize(
    ("metadata", "request_kwargs", "code", "reason", "message"),
    [
        ([], {}, grpc.StatusCode.UNAUTHENTICATED, "missing-token", "Bearer"),
        (
            [("authorization", f"Bearer {SA.token('d', 'f', audience='istio-ca')}")],
            {},
            grpc.StatusCode.UNAUTHENTICATED,
            "wrong-audience",
            "meshguard-ca",
        ),
        (
            [("authorization", f"Bearer {SA.token('d', 'f', lifetime=-300)}")],
            {},
            grpc.StatusCode.UNAUTHENTICATED,
            "expired",
            "expired",
        ),
        (
            [("authorization", f"Bearer {SA.token('d', 'f')}")],
            {"ttl_seconds": 49 * 3600},
            grpc.StatusCode.INVALID_ARGUMENT,
            "ttl-too-long",
            "maximum",
        ),
        (
            [("authorization", f"Bearer {SA.token('d', 'f')}")],
            {"csr": "junk"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad-csr",
            "CSR",
        ),
    ],
    ids=["no-token", "audience", "expired", "ttl", "csr"],
)
async def test_refusals_are_statuses_with_a_metric(
    ca: tuple[ca_pb2_grpc.CertificateServiceStub, Issuer],
    metadata: list[tuple[str, str]],
    request_kwargs: dict[str, object],
    code: grpc.StatusCode,
    reason: str,
    message: str,
) -> None:
    stub, _ = ca
    before = _refusals(reason)
    fields: dict[str, object] = {"csr": _csr(), **request_kwargs}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateCertificate(ca_pb2.CreateCertificateRequest(**fields), metadata=metadata)
    assert caught.value.code() == code
    assert message in (caught.value.details() or "")
    assert _refusals(reason) == before + 1


class _BrokenVerifier:
    async def verify(self, token: str) -> ServiceAccountIdentity:
        raise RuntimeError("bug")


async def test_unexpected_failures_are_internal_with_a_metric() -> None:
    server = grpc.aio.server()
    CertificateService(generate_root("cluster.local"), _BrokenVerifier(), CaPolicy()).register(
        server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    before = _refusals("internal")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ca_pb2_grpc.CertificateServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateCertificate(
                    ca_pb2.CreateCertificateRequest(csr=_csr()),
                    metadata=[("authorization", "Bearer t")],
                )
    finally:
        await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert _refusals("internal") == before + 1
