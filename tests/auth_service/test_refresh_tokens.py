"""Refresh tokens without Redis: the proof is exactly the documented HMAC chain, whichever sessions
were checked or made before (auth keeps the last session's key between a check and a make)."""

from __future__ import annotations

import base64
import hmac

import pytest

from auth_service.sessions import InvalidRefreshToken, RefreshTokens

KEY = bytes(range(32))
SESSION_A = "a" * 32
SESSION_B = "0123456789abcdef" * 2


def _expected(session_id: str, generation: int) -> str:
    """HMAC-SHA256(HMAC-SHA256(refresh key, "refresh-session:" + id), "generation:" + n), base64url."""
    session_key = hmac.digest(KEY, b"refresh-session:" + session_id.encode(), "sha256")
    mac = hmac.digest(session_key, b"generation:" + str(generation).encode(), "sha256")
    return f"{session_id}.{generation}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_tokens_are_the_documented_hmac_chain_in_any_order() -> None:
    tokens = RefreshTokens(KEY)
    for session_id, generation in [(SESSION_A, 0), (SESSION_A, 1), (SESSION_B, 7), (SESSION_A, 2), (SESSION_B, 8)]:
        assert tokens.make(session_id, generation) == _expected(session_id, generation)
        assert tokens.check(_expected(session_id, generation)) == (session_id, generation)


def test_a_proof_made_for_one_session_fails_for_the_one_checked_before() -> None:
    tokens = RefreshTokens(KEY)
    tokens.check(_expected(SESSION_A, 3))  # session A's key is the last one now
    proof_of_a = _expected(SESSION_A, 3).rsplit(".", 1)[1]
    with pytest.raises(InvalidRefreshToken) as refused:
        tokens.check(f"{SESSION_B}.3.{proof_of_a}")
    assert refused.value.reason == "unknown"
    with pytest.raises(InvalidRefreshToken):
        tokens.check(_expected(SESSION_A, 4).replace(SESSION_A, SESSION_B, 1))


def test_another_refresh_key_makes_other_tokens() -> None:
    other = RefreshTokens(bytes(reversed(range(32))))
    with pytest.raises(InvalidRefreshToken):
        other.check(_expected(SESSION_A, 0))
