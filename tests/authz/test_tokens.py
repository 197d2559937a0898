"""Token parsing: decoded once per distinct token, malformed tokens refused every time."""

from __future__ import annotations

import pytest

from meshguard.authz import tokens
from tests.authz.support import ISSUER, Signer

SIGNER = Signer("RSA")


def test_same_token_is_decoded_once() -> None:
    raw = SIGNER.token()
    first = tokens.parse(raw)
    assert first.issuer == ISSUER
    assert tokens.parse(raw) is first
    assert tokens.parse(SIGNER.token(groups=["other"])) is not first


def test_malformed_token_raises_on_every_call() -> None:
    for _ in range(2):
        with pytest.raises(tokens.TokenError, match="two dots"):
            tokens.parse("not-a-token")
