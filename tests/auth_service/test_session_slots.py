"""Every key one script touches lives in one Redis Cluster slot, found from the refresh token alone."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from auth_service.sessions import SLOT_DIGITS, SessionStore, slot_of
from auth_service.throttle import LoginThrottle


class _NoRedis:
    """Key names need no server: a client that is never called."""

    def register_script(self, body: str) -> None:
        return None


def test_a_users_session_keys_and_index_share_one_slot():
    sessions = SessionStore(_NoRedis(), prefix="auth:", ttl=60, reuse_grace=10)  # type: ignore[arg-type]
    for _ in range(200):
        user_id = str(uuid.uuid4())
        session_id = slot_of(user_id) + "0" * (32 - SLOT_DIGITS)
        keys = [*sessions._keys(session_id), sessions._ended(session_id), sessions._index(user_id)]
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys
        assert user_id not in "".join(keys[:3])  # a refresh token's keys do not name the user


def test_the_slot_tag_spreads_users_over_the_cluster():
    slots = {key_slot(f"{{{slot_of(str(uuid.uuid4()))}}}".encode()) for _ in range(2000)}
    assert len(slots) > 1800  # 2,000 users land on nearly as many of the 16,384 slots


def test_an_accounts_login_counters_share_one_slot():
    throttle = LoginThrottle(_NoRedis(), prefix="auth:", max_failures=1, account_max_failures=1, window=1)  # type: ignore[arg-type]
    for email in ("a@example.com", "b@example.com"):
        for device in (None, "nonce"):
            keys = [key for key, _ in throttle._counters(email, "10.0.0.1", device)]
            assert len({key_slot(key.encode()) for key in keys}) == 1, keys
            assert email not in "".join(keys)
