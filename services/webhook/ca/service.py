"""The CertificateService gRPC handler: authenticate, derive the SPIFFE ID, sign, answer.

Every refusal is a gRPC status with a message that says what to fix, and one increment of
``meshguard_ca_refusals_total{reason}``; issued certificates count in
``meshguard_ca_certificates_issued_total``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging

import grpc
from prometheus_client import Counter

from meshguard.common.protos.meshguard.ca.v1 import ca_pb2, ca_pb2_grpc
from meshguard.common.spiffe import SpiffeIdError, for_workload
from meshguard.webhook.ca.authority import CsrError, Issuer, IssuerExpired
from meshguard.webhook.ca.tokens import TokenRejected, TokenVerifier, VerifierUnavailable

SERVICE_NAME = "meshguard.ca.v1.CertificateService"

log = logging.getLogger(__name__)

REFUSALS = Counter(
    "meshguard_ca_refusals_total", "Certificate requests the CA refused, by reason", ["reason"]
)
ISSUED = Counter("meshguard_ca_certificates_issued_total", "Certificates the CA signed")


@dataclasses.dataclass(frozen=True, slots=True)
class CaPolicy:
    trust_domain: str = "cluster.local"
    default_ttl: datetime.timedelta = datetime.timedelta(hours=24)
    max_ttl: datetime.timedelta = datetime.timedelta(days=90)


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class CertificateService(ca_pb2_grpc.CertificateServiceServicer):  # type: ignore[misc]
    def __init__(self, issuer: Issuer, verifier: TokenVerifier, policy: CaPolicy) -> None:
        self._issuer = issuer
        self._verifier = verifier
        self._policy = policy

    def register(self, server: grpc.aio.Server) -> None:
        ca_pb2_grpc.add_CertificateServiceServicer_to_server(self, server)

    async def CreateCertificate(
        self, request: ca_pb2.CreateCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.CreateCertificateResponse:
        try:
            return await self._create(request, context)
        except _Refused as refusal:
            REFUSALS.labels(refusal.reason).inc()
            log.warning("certificate refused", extra={"reason": refusal.reason})
            await context.abort(refusal.code, str(refusal))
            raise AssertionError("unreachable") from None  # abort raises
        except Exception:
            REFUSALS.labels("internal").inc()
            log.exception("certificate request failed")
            await context.abort(grpc.StatusCode.INTERNAL, "the CA failed to sign; see its log")
            raise AssertionError("unreachable") from None

    async def GetRootBundle(
        self, request: ca_pb2.GetRootBundleRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.GetRootBundleResponse:
        return ca_pb2.GetRootBundleResponse(root_bundle=self._issuer.root_bundle)

    async def _create(
        self, request: ca_pb2.CreateCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.CreateCertificateResponse:
        token = _bearer_token(context.invocation_metadata() or ())
        try:
            identity = await self._verifier.verify(token)
        except TokenRejected as exc:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, exc.reason, str(exc)) from None
        except VerifierUnavailable as exc:
            raise _Refused(grpc.StatusCode.UNAVAILABLE, "verifier-unavailable", str(exc)) from None
        try:
            spiffe_id = for_workload(
                self._policy.trust_domain, identity.namespace, identity.service_account
            )
        except SpiffeIdError as exc:
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED, "bad-identity", str(exc)) from None
        ttl = self._ttl(request.ttl_seconds)
        try:
            issued = self._issuer.sign(request.csr, spiffe_id, ttl)
        except CsrError as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "bad-csr", str(exc)) from None
        except IssuerExpired as exc:
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION, "issuer-expired", str(exc)
            ) from None
        ISSUED.inc()
        log.info(
            "certificate issued",
            extra={"spiffe_id": str(spiffe_id), "not_after": issued.not_after.isoformat()},
        )
        return ca_pb2.CreateCertificateResponse(
            cert_chain=list(issued.pems),
            spiffe_id=str(spiffe_id),
            expires_at=int(issued.not_after.timestamp()),
        )

    def _ttl(self, seconds: int) -> datetime.timedelta:
        if seconds <= 0:
            return min(self._policy.default_ttl, self._policy.max_ttl)
        ttl = datetime.timedelta(seconds=seconds)
        if ttl > self._policy.max_ttl:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                "ttl-too-long",
                f"requested TTL {seconds}s is above the maximum "
                f"{int(self._policy.max_ttl.total_seconds())}s",
            )
        return ttl


def _bearer_token(metadata: object) -> str:
    for key, value in metadata:  # type: ignore[attr-defined]
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise _Refused(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing-token",
        "send the projected ServiceAccount token as 'authorization: Bearer <token>' metadata",
    )
