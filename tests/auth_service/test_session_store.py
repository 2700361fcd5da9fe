"""SessionStore on a real Redis, without HTTP: racing rotations and the grace window's edges."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from auth_service.sessions import USER_KEY_DIGITS, InvalidRefreshToken, SessionStore, SessionUser
from shared.redis_client import create_redis_client

RACERS = 20
# One round of a non-atomic rotation forks about half the time here; ten rounds make a miss rare.
ROUNDS = 10
GRACE_SECONDS = 2
REFRESH_KEY = bytes(range(32))
USER = SessionUser("user-1", "racer@example.com", "Racer")


@pytest.fixture
def store(redis_url: str) -> SessionStore:
    return SessionStore(
        create_redis_client(redis_url), refresh_key=REFRESH_KEY, prefix="test:", ttl=600, reuse_grace=GRACE_SECONDS
    )


def _rotate_together(store: SessionStore, token: str) -> list[str]:
    """Rotate `token` from RACERS threads released at once; return each racer's successor."""
    barrier = threading.Barrier(RACERS)

    def racer(_: int) -> str:
        barrier.wait(timeout=10)
        return store.rotate(token).refresh_token

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        # list() re-raises any racer's exception here, so a failure in a thread fails the test.
        return list(pool.map(racer, range(RACERS)))


def test_racing_rotations_of_one_token_agree_on_one_successor(store):
    for round_ in range(ROUNDS):
        _, token, _ = store.create(USER, "test")
        successors = set(_rotate_together(store, token))
        assert len(successors) == 1, f"round {round_}: the session forked into {len(successors)} chains"
        [successor] = successors
        assert successor != token
        assert store.rotate(successor).refresh_token != successor  # the one chain goes on


def test_grace_window_edges(store):
    """A replay at 0.8× the grace window gets the current token; at 1.2× it revokes the session."""
    _, early_first, _ = store.create(USER, "early")
    _, late_first, _ = store.create(USER, "late")
    early_second = store.rotate(early_first).refresh_token
    late_second = store.rotate(late_first).refresh_token
    started = time.monotonic()

    time.sleep(max(0.0, 0.8 * GRACE_SECONDS - (time.monotonic() - started)))
    assert store.rotate(early_first).refresh_token == early_second

    time.sleep(max(0.0, 1.2 * GRACE_SECONDS - (time.monotonic() - started)))
    with pytest.raises(InvalidRefreshToken) as theft:
        store.rotate(late_first)
    assert theft.value.reason == "reused"
    with pytest.raises(InvalidRefreshToken):
        store.rotate(late_second)  # the whole session ended, not only the replayed token


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("a" * 32 + ".7." + "b" * 43, "unknown"),  # well-formed, but not a proof auth made: Redis is not asked
        ("a" * 32 + ".7." + "b" * 44, "malformed"),
        ("a" * 32 + ".7." + "b" * 42, "malformed"),  # a proof shorter than 256 bits
        ("a" * 31 + ".7." + "b" * 43, "malformed"),
        ("a" * 32 + ".07." + "b" * 43, "malformed"),  # one generation, one spelling
        ("a" * 32 + ".1234567890." + "b" * 43, "malformed"),
        ("A" * 32 + ".7." + "b" * 43, "malformed"),
    ],
)
def test_token_shape_limits(store, token, reason):
    with pytest.raises(InvalidRefreshToken) as refused:
        store.rotate(token)
    assert refused.value.reason == reason


def test_revoking_everyone_ends_every_users_sessions_wherever_they_live(store, request):
    users = [SessionUser(f"user-{n}", f"u{n}@example.com", "U") for n in range(40)]
    tokens = [store.create(user, "agent")[1] for user in users for _ in range(2)]
    if request.node.callspec.params["redis_url"] == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        holders = {cluster.primary_for(f"{{{token[:USER_KEY_DIGITS]}}}").port for token in tokens}
        assert len(holders) == len(cluster.primaries())  # the sessions are spread over every primary

    assert store.revoke_everyone() == len(tokens)
    for token in tokens:
        with pytest.raises(InvalidRefreshToken):
            store.rotate(token)
    assert all(store.list(user.id) == [] for user in users)
    assert store.revoke_everyone() == 0
