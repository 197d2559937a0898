"""The agent's side of the CertificateService call: CSR and token in, SVID out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc

from meshguard.common.protos.meshguard.ca.v1 import ca_pb2, ca_pb2_grpc
from meshguard.webhook.agent.identity import Svid, new_key_and_csr, svid_from_chain


class CaRefused(Exception):
    """The CA answered with an error status (kept for logs and health)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CaEndpoint:
    """Where the CA is and how to trust it: the mesh root bundle (a ConfigMap in the pod)."""

    address: str
    root_bundle: Path
    server_name: str | None = None  # TLS name to check when ``address`` is an IP
    timeout: float = 10.0


async def fetch_svid(endpoint: CaEndpoint, token: str, ttl_seconds: int) -> tuple[Svid, str]:
    """A fresh key, its certificate chain, and the CA's current root bundle."""
    key = new_key_and_csr()
    credentials = grpc.ssl_channel_credentials(root_certificates=endpoint.root_bundle.read_bytes())
    options = []
    if endpoint.server_name:
        options.append(("grpc.ssl_target_name_override", endpoint.server_name))
    async with grpc.aio.secure_channel(endpoint.address, credentials, options=options) as channel:
        stub = ca_pb2_grpc.CertificateServiceStub(channel)
        try:
            reply = await stub.CreateCertificate(
                ca_pb2.CreateCertificateRequest(csr=key.csr_pem, ttl_seconds=ttl_seconds),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=endpoint.timeout,
            )
            bundle = await stub.GetRootBundle(
                ca_pb2.GetRootBundleRequest(), timeout=endpoint.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise CaRefused(f"{exc.code().name}: {exc.details()}") from None
    svid = svid_from_chain(reply.spiffe_id, list(reply.cert_chain), key.key_pem)
    return svid, str(bundle.root_bundle)
