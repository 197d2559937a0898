"""Offline verification of projected ServiceAccount tokens with the issuer's public keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshguard.webhook.ca.issuer_keys import IssuerKeysVerifier
from meshguard.webhook.ca.tokens import ServiceAccountIdentity, TokenRejected
from tests.harness.satokens import ServiceAccountIssuer

ISSUER = ServiceAccountIssuer.create()


@pytest.fixture(params=["jwks", "pem"])
def verifier(request: pytest.FixtureRequest, tmp_path: Path) -> IssuerKeysVerifier:
    if request.param == "jwks":
        path = ISSUER.write_jwks(tmp_path / "jwks.json")
    else:
        path = ISSUER.write_pem(tmp_path / "sa.pub")
    return IssuerKeysVerifier.from_file(path, issuer=ISSUER.issuer)


async def test_identity_comes_from_the_token(verifier: IssuerKeysVerifier) -> None:
    identity = await verifier.verify(ISSUER.token("default", "frontend"))
    assert identity == ServiceAccountIdentity("default", "frontend")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (ISSUER.token("default", "frontend", audience="istio-ca"), "wrong-audience"),
        (ISSUER.token("default", "frontend", lifetime=-120), "expired"),
        (ISSUER.token("default", "frontend", iss="https://elsewhere"), "wrong-issuer"),
        (ServiceAccountIssuer.create().token("default", "frontend"), "bad-signature"),
        (ISSUER.token("default", "frontend", sub="system:node:n1"), "not-service-account"),
        (
            ISSUER.token(
                "default",
                "frontend",
                **{"kubernetes.io": {"namespace": "kube-system", "serviceaccount": {"name": "x"}}},
            ),
            "claims-mismatch",
        ),
        ("not.a.jwt", "invalid"),
    ],
    ids=["audience", "expired", "issuer", "foreign-key", "not-sa", "claims", "garbage"],
)
async def test_refusals_name_the_reason(
    verifier: IssuerKeysVerifier, token: str, reason: str
) -> None:
    with pytest.raises(TokenRejected) as caught:
        await verifier.verify(token)
    assert caught.value.reason == reason


async def test_any_of_several_keys_verifies(tmp_path: Path) -> None:
    new = ServiceAccountIssuer.create("new-key")
    both = IssuerKeysVerifier([ISSUER.key.public_key(), new.key.public_key()], issuer=ISSUER.issuer)
    assert (await both.verify(new.token("a", "b"))).service_account == "b"
    assert (await both.verify(ISSUER.token("a", "c"))).service_account == "c"
