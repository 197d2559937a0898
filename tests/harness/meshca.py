"""A real mesh CA (CertificateService over TLS) on a free localhost port, for tests."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import grpc

from meshguard.webhook.agent.caclient import CaEndpoint
from meshguard.webhook.ca.authority import Issuer, generate_root
from meshguard.webhook.ca.issuer_keys import IssuerKeysVerifier
from meshguard.webhook.ca.service import CaPolicy, CertificateService
from tests.harness.satokens import ServiceAccountIssuer


@dataclasses.dataclass
class RunningCa:
    server: grpc.aio.Server
    port: int
    issuer: Issuer
    root_bundle: Path

    def endpoint(self) -> CaEndpoint:
        return CaEndpoint(f"127.0.0.1:{self.port}", self.root_bundle, server_name="localhost")

    async def stop(self) -> None:
        await self.server.stop(None)


async def start_ca(
    directory: Path,
    tokens: ServiceAccountIssuer,
    *,
    default_ttl: datetime.timedelta = datetime.timedelta(hours=24),
    max_ttl: datetime.timedelta = datetime.timedelta(days=1),
) -> RunningCa:
    directory.mkdir(parents=True, exist_ok=True)
    issuer = generate_root("cluster.local")
    verifier = IssuerKeysVerifier.from_file(
        tokens.write_jwks(directory / "jwks.json"), issuer=tokens.issuer
    )
    server = grpc.aio.server()
    CertificateService(issuer, verifier, CaPolicy("cluster.local", default_ttl, max_ttl)).register(
        server
    )
    key, chain = issuer.serving_certificate(["localhost", "127.0.0.1"])
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, chain)]))
    await server.start()
    root = directory / "root-cert.pem"
    root.write_text(issuer.root_bundle)
    return RunningCa(server, port, issuer, root)
