"""Access tokens: a token checked once is remembered, and still expires."""

import time
import uuid

import pytest

from cinema_api.infrastructure import tokens
from cinema_api.infrastructure.tokens import AccessTokens, InvalidToken

SECRET = "x" * 16 + "y" * 16 + "0123456789abcdef"


def test_a_remembered_token_still_expires(monkeypatch):
    access = AccessTokens(SECRET, lifetime=60)
    token, exp = access.issue(uuid.uuid4(), "customer", uuid.uuid4())
    assert access.decode(token)["exp"] == exp
    assert token in access.checked
    monkeypatch.setattr(tokens.time, "time", lambda: exp + tokens.LEEWAY_SEC + 1)
    with pytest.raises(InvalidToken, match="expired"):
        access.decode(token)


def test_a_token_signed_with_another_key_is_never_remembered():
    token, _ = AccessTokens("another-key-" + "z" * 40, lifetime=60).issue(uuid.uuid4(), "manager", uuid.uuid4())
    access = AccessTokens(SECRET, lifetime=60)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            access.decode(token)
    assert token not in access.checked


def test_remembered_tokens_are_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "CHECKED_TOKENS", 3)
    access = AccessTokens(SECRET, lifetime=60)
    issued = [access.issue(uuid.uuid4(), "customer", uuid.uuid4(), now=time.time())[0] for _ in range(5)]
    for token in issued:
        access.decode(token)
    assert list(access.checked) == issued[2:]
