"""RequestAuthentication stage (authz-semantics.md §7) with inline JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from meshguard.authz import loader
from meshguard.authz.attributes import HttpRequest, Identity
from meshguard.authz.authn import Authenticator, AuthnResult, Verified, VerifiedCache
from meshguard.authz.compiler import EngineOptions
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule
from meshguard.common.resources import parse_text
from tests.authz.support import ISSUER, Signer

RSA = Signer("RSA")


def _ra(rule: str, jwks: str = RSA.jwks) -> list[Any]:
    text = (
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        "metadata: {name: r, namespace: foo}\n"
        f"spec:\n  jwtRules:\n  - issuer: {ISSUER}\n    jwks: '{jwks}'\n"
        + "".join(f"    {line}\n" for line in rule.splitlines() if line)
    )
    ps = loader.build(parse_text(text, "t.yaml"), EngineOptions(), strict=False)
    return list(ps.authentications)


async def _no_remote(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
    raise AssertionError("no remote fetch expected")


def _http(
    headers: dict[str, str] | None = None, path: str = "/", method: str = "GET"
) -> HttpRequest:
    merged = {":path": path, ":method": method, ":authority": "svc"}
    merged.update({k.lower(): v for k, v in (headers or {}).items()})
    return HttpRequest("svc", method, path, merged, "https")


async def _authn(http: HttpRequest, rule: str = "", jwks: str = RSA.jwks) -> AuthnResult:
    return await Authenticator(_no_remote).authenticate(http, _ra(rule, jwks))


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_valid_token_gives_identity_and_strips_token() -> None:
    result = await _authn(_http(_bearer(RSA.token(groups=["a"]))))
    assert not result.failed
    assert result.identity is not None and result.identity.claims["sub"] == "alice"
    assert result.headers_to_remove == ("authorization",)


async def test_forward_original_token_keeps_it() -> None:
    result = await _authn(_http(_bearer(RSA.token())), "forwardOriginalToken: true")
    assert result.identity is not None and result.headers_to_remove == ()


async def test_no_token_continues_without_identity() -> None:
    result = await _authn(_http())
    assert not result.failed and result.identity is None


async def test_no_request_authentication_ignores_even_garbage_tokens() -> None:
    result = await Authenticator(_no_remote).authenticate(_http(_bearer("garbage")), [])
    assert not result.failed and result.headers_to_remove == ()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-jwt", "Jwt is not in the form"),
        (RSA.token(exp=int(time.time()) - 120), "Jwt is expired"),
        (RSA.token(nbf=int(time.time()) + 120), "Jwt not yet valid"),
        (RSA.token(iss="https://other"), "Jwt issuer is not configured"),
        (Signer("RSA").token(), "Jwt verification fails"),
        (RSA.token(headers={"kid": "unknown"}), "Jwks doesn't have key"),
    ],
)
async def test_invalid_tokens_are_401(token: str, message: str) -> None:
    result = await _authn(_http(_bearer(token)))
    assert result.status == 401 and result.message.startswith(message)


async def test_clock_skew_of_60_seconds_is_tolerated() -> None:
    token = RSA.token(exp=int(time.time()) - 30, nbf=int(time.time()) + 30)
    assert not (await _authn(_http(_bearer(token)))).failed


async def test_invalid_token_is_401_even_on_a_public_path() -> None:
    assert (await _authn(_http(_bearer("a.b.c"), path="/public"))).status == 401


async def test_audience_mismatch_is_403() -> None:
    rule = "audiences: [api]"
    assert (await _authn(_http(_bearer(RSA.token(aud="web"))), rule)).status == 403
    assert (await _authn(_http(_bearer(RSA.token())), rule)).status == 403
    ok = await _authn(_http(_bearer(RSA.token(aud=["web", "api"]))), rule)
    assert not ok.failed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, str]) -> str:
    payload = {"iss": ISSUER, "sub": "mallory"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


async def test_alg_none_is_rejected() -> None:
    token = _unsigned({"alg": "none", "kid": "k1"}) + "."
    assert (await _authn(_http(_bearer(token)))).status == 401


async def test_rsa_public_key_is_never_an_hmac_secret() -> None:
    # Classic key confusion: an HS256 token whose secret is the RSA public key.
    pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _unsigned({"alg": "HS256", "kid": "k1"})
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{_b64(signature)}"
    result = await _authn(_http(_bearer(forged)))
    assert result.status == 401 and result.identity is None


@pytest.mark.parametrize("kind", ["RSA", "EC", "OKP", "oct"])
async def test_key_types(kind: str) -> None:
    signer = Signer(kind)
    result = await _authn(_http(_bearer(signer.token())), jwks=signer.jwks)
    assert not result.failed and result.identity is not None


async def test_ps256_with_rsa_key() -> None:
    assert not (await _authn(_http(_bearer(RSA.token(alg="PS256"))))).failed


async def test_hmac_token_against_rsa_keyset_fails() -> None:
    token = jwt.encode({"iss": ISSUER}, "secret-secret-secret-secret-32b!", "HS256", {"kid": "k1"})
    assert (await _authn(_http(_bearer(token)))).status == 401


async def test_default_locations_include_access_token_param() -> None:
    result = await _authn(_http(path=f"/x?access_token={RSA.token()}&a=1"))
    assert result.identity is not None and result.params_to_remove == ("access_token",)


async def test_configured_locations_replace_defaults() -> None:
    rule = "fromHeaders: [{name: x-jwt, prefix: 'Token '}]\nfromCookies: [session]"
    token = RSA.token()
    assert (await _authn(_http(_bearer(token)), rule)).identity is None
    by_header = await _authn(_http({"x-jwt": f"Token {token}"}), rule)
    assert by_header.identity is not None and by_header.headers_to_remove == ("x-jwt",)
    by_cookie = await _authn(_http({"cookie": f"a=b; session={token}"}), rule)
    assert by_cookie.identity is not None and by_cookie.headers_to_remove == ()


async def test_header_without_prefix_is_treated_as_missing() -> None:
    rule = "fromHeaders: [{name: x-jwt, prefix: 'Token '}]"
    assert (await _authn(_http({"x-jwt": RSA.token()}), rule)).identity is None


async def test_cors_preflight_bypasses_jwt() -> None:
    headers = {"origin": "https://app", "access-control-request-method": "POST", **_bearer("bad")}
    result = await _authn(_http(headers, method="OPTIONS"))
    assert not result.failed and result.identity is None


async def test_output_headers_and_hygiene() -> None:
    rule = (
        "outputPayloadToHeader: x-payload\n"
        "outputClaimToHeaders: [{header: x-sub, claim: sub}, {header: x-team, claim: org.team},"
        " {header: x-admin, claim: admin}, {header: x-list, claim: groups}]"
    )
    token = RSA.token(org={"team": "core"}, admin=True, groups=["a"])
    result = await _authn(_http({"x-sub": "forged", **_bearer(token)}), rule)
    headers = dict(result.headers_to_set)
    assert headers["x-sub"] == "alice" and headers["x-team"] == "core"
    assert headers["x-admin"] == "true" and "x-list" not in headers
    assert json.loads(base64.urlsafe_b64decode(headers["x-payload"] + "=="))["sub"] == "alice"
    assert "x-sub" in result.headers_to_remove
    anonymous = await _authn(_http({"x-sub": "forged"}), rule)
    assert anonymous.headers_to_remove == ("x-sub",)


async def test_space_delimited_claims_are_split() -> None:
    token = RSA.token(scope="read write", roles="a b")
    result = await _authn(_http(_bearer(token)), "spaceDelimitedClaims: [roles]")
    assert result.identity is not None
    assert result.identity.claims["scope"] == ["read", "write"]
    assert result.identity.claims["roles"] == ["a", "b"]


async def test_verified_cache_is_used_for_repeated_tokens() -> None:
    authenticator = Authenticator(_no_remote)
    ras = _ra("")
    token = RSA.token()
    first = await authenticator.authenticate(_http(_bearer(token)), ras)
    second = await authenticator.authenticate(_http(_bearer(token)), ras)
    assert first.identity == second.identity


def test_verified_cache_separates_rules_and_honours_exp() -> None:
    cache = VerifiedCache(size=2)
    rule, twin = JWTRule(ISSUER), JWTRule(ISSUER)
    verified = Verified(Identity({"exp": 1000}), ())
    cache.put("tok", rule, verified, now=100.0)
    assert cache.get("tok", rule, now=200.0) is verified
    assert cache.get("tok", twin, now=200.0) is None  # an equal rule of another config
    assert cache.get("other", rule, now=200.0) is None
    assert cache.get("tok", rule, now=1000.0 + 61) is None  # exp + clock skew passed
    for index in range(3):
        cache.put(f"t{index}", rule, verified, now=100.0)
    assert cache.get("t0", rule, now=100.0) is None  # evicted: bounded
    assert cache.get("t2", rule, now=100.0) is verified
