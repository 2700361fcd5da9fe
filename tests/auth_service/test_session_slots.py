"""Every key one script touches lives in one Redis Cluster slot, found from the refresh token alone."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from auth_service.sessions import USER_KEY_DIGITS, SessionStore
from auth_service.throttle import LoginThrottle


class _NoRedis:
    """Key names need no server: a client that is never called."""

    def register_script(self, body: str) -> None:
        return None


def _store() -> SessionStore:
    return SessionStore(_NoRedis(), refresh_key=bytes(32), prefix="auth:", ttl=60, reuse_grace=10)  # type: ignore[arg-type]


def test_a_users_document_and_ended_markers_share_one_slot_named_by_the_session_id():
    sessions = _store()
    for _ in range(200):
        user_id = str(uuid.uuid4())
        session_id = sessions.tokens.new_session_id(user_id)
        keys = [sessions._document(sessions.tokens.user_key(user_id)), sessions._document_of(session_id)]
        keys.append(sessions._ended(session_id))
        assert keys[0] == keys[1]  # the refresh token's session id finds the user's document
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys
        assert user_id not in "".join(keys) and user_id.replace("-", "") not in session_id  # nobody named


def test_the_user_keys_spread_users_over_the_cluster():
    sessions = _store()
    slots = {key_slot(sessions._document(sessions.tokens.user_key(str(uuid.uuid4()))).encode()) for _ in range(2000)}
    assert len(slots) > 1800  # 2,000 users land on nearly as many of the 16,384 slots
    assert len(sessions.tokens.user_key("someone")) == USER_KEY_DIGITS


def test_an_accounts_login_counters_share_one_slot():
    throttle = LoginThrottle(_NoRedis(), prefix="auth:", max_failures=1, account_max_failures=1, window=1)  # type: ignore[arg-type]
    for email in ("a@example.com", "b@example.com"):
        for device in (None, "nonce"):
            keys = [key for key, _ in throttle._counters(email, "10.0.0.1", device)]
            assert len({key_slot(key.encode()) for key in keys}) == 1, keys
            assert email not in "".join(keys)
