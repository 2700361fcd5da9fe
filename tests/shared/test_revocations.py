"""The revocation state a resource process keeps, the verifier consulting it on every call, and the
feed between auth's publisher and a follower, on a private redis-server."""

from __future__ import annotations

import json
import logging
import time

import pytest
import redis as redis_lib

from shared.access_tokens import AccessTokenVerifier, Caller, JwksKeys, TokenError
from shared.redis_client import create_redis_client
from shared.revocations import RevocationFeed, RevocationNotPublished, RevocationPublisher, RevocationState
from tests.support.backends import free_port
from tests.support.tokens import AUDIENCE, ISSUER

NOW = 1_800_000_000.0
STREAM = "auth:revocations"


def caller(*, sub: str = "u1", sid: str = "s1", iat: int = int(NOW) - 10, kid: str = "k1") -> Caller:
    return Caller(id=sub, name="", session_id=sid, token_id="j", expires_at=iat + 3600, issued_at=iat, key_id=kid)


def test_a_revoked_session_is_refused_until_its_entry_expires():
    state = RevocationState()
    state.apply({"type": "session", "sid": "s1", "until": str(NOW + 60)}, now=NOW)
    assert state.refusal(caller(sid="s1")) == "The session of this token has ended"
    assert state.refusal(caller(sid="s2")) is None
    state.prune(now=NOW + 59)
    assert state.refusal(caller(sid="s1")) is not None
    state.prune(now=NOW + 60)
    assert state.refusal(caller(sid="s1")) is None and len(state) == 0


def test_an_event_that_can_no_longer_matter_is_not_kept():
    state = RevocationState()
    state.apply({"type": "session", "sid": "s1", "until": str(NOW - 1)}, now=NOW)
    assert len(state) == 0


def test_a_user_cut_off_refuses_the_tokens_issued_before_it_and_only_those():
    state = RevocationState()
    before = int(NOW)
    state.apply({"type": "user", "sub": "u1", "before": str(before), "until": str(NOW + 60)}, now=NOW)
    assert state.refusal(caller(sub="u1", iat=before - 1)) == "Every session of this user was ended"
    assert state.refusal(caller(sub="u1", iat=before)) is None  # a login after the cut-off
    assert state.refusal(caller(sub="u2", iat=before - 1)) is None
    # An older cut-off arriving late does not move the newer one back.
    state.apply({"type": "user", "sub": "u1", "before": str(before - 100), "until": str(NOW + 60)}, now=NOW)
    assert state.refusal(caller(sub="u1", iat=before - 50)) is not None
    state.prune(now=NOW + 61)
    assert state.refusal(caller(sub="u1", iat=before - 1)) is None


def test_the_global_cut_off_refuses_every_older_token_then_expires():
    state = RevocationState()
    state.apply({"type": "everyone", "before": str(int(NOW)), "until": str(NOW + 60)}, now=NOW)
    assert state.refusal(caller(sub="anyone", iat=int(NOW) - 1)) == "Every session was ended"
    assert state.refusal(caller(sub="anyone", iat=int(NOW))) is None
    state.prune(now=NOW + 60)
    assert state.refusal(caller(sub="anyone", iat=int(NOW) - 1)) is None


def test_a_withdrawn_kid_is_remembered_until_its_tokens_expired():
    state = RevocationState()
    state.apply({"type": "key", "kid": "k1", "until": str(NOW + 60)}, now=NOW)
    assert state.key_withdrawn("k1") and not state.key_withdrawn("k2")
    state.prune(now=NOW + 60)
    assert not state.key_withdrawn("k1")


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session"},
        {"type": "user", "sub": "u", "until": "x", "before": "1"},
        {"type": "unknown-kind", "until": str(NOW + 5)},
    ],
)
def test_malformed_or_unknown_events_are_skipped(event):
    state = RevocationState()
    assert state.apply(event, now=NOW) is None
    assert len(state) == 0


# --- the verifier consults the state on every call ------------------------------------------------


@pytest.fixture
def verifier(keys_dir):
    return AccessTokenVerifier(JwksKeys(path=keys_dir / "jwks.json"), issuer=ISSUER, audience=AUDIENCE)


def test_a_cached_token_is_refused_once_its_session_is_revoked(verifier, tokens):
    token = tokens.make(sid="a" * 32)
    assert verifier.verify(token).session_id == "a" * 32  # now cached
    verifier.revocations.apply({"type": "session", "sid": "a" * 32, "until": str(time.time() + 60)})
    with pytest.raises(TokenError) as refused:
        verifier.verify(token)
    assert refused.value.code == "token_revoked"
    assert 'error="invalid_token"' in refused.value.headers["WWW-Authenticate"]


def test_a_cached_token_is_refused_once_its_user_is_cut_off(verifier, tokens):
    token = tokens.make(sub="user-9")
    verifier.verify(token)
    verifier.revocations.apply(
        {"type": "user", "sub": "user-9", "before": str(int(time.time()) + 1), "until": str(time.time() + 60)}
    )
    with pytest.raises(TokenError) as refused:
        verifier.verify(token)
    assert refused.value.code == "token_revoked"


def test_a_cached_token_is_refused_once_its_key_is_withdrawn(verifier, tokens, keys_dir):
    token = tokens.make()
    caller = verifier.verify(token)
    verifier.revocations.apply({"type": "key", "kid": caller.key_id, "until": str(time.time() + 60)})
    with pytest.raises(TokenError) as refused:
        verifier.verify(token)
    assert refused.value.code == "invalid_token"


def test_a_key_no_longer_published_is_dropped_and_its_cached_tokens_refused(tmp_path, keys_dir, tokens):
    jwks = tmp_path / "jwks.json"
    jwks.write_text((keys_dir / "jwks.json").read_text())
    verifier = AccessTokenVerifier(JwksKeys(path=jwks), issuer=ISSUER, audience=AUDIENCE)
    token = tokens.make()
    kid = verifier.verify(token).key_id
    jwks.write_text(json.dumps({"keys": []}))
    verifier.keys.reload()
    assert kid not in verifier.keys
    with pytest.raises(TokenError) as refused:
        verifier.verify(token)
    assert refused.value.code == "invalid_token"


def test_a_jwks_source_that_cannot_be_read_keeps_its_keys(tmp_path, keys_dir, tokens):
    jwks = tmp_path / "jwks.json"
    jwks.write_text((keys_dir / "jwks.json").read_text())
    keys = JwksKeys(path=jwks)
    jwks.write_text("{not json")
    keys.reload()
    assert len(keys) == 1


# --- publisher and follower on a real Redis -------------------------------------------------------


@pytest.fixture
def client(redis_url):
    return redis_lib.Redis.from_url(redis_url)


def test_the_stream_keeps_only_the_events_younger_than_the_window(client):
    publisher = RevocationPublisher(client, stream=STREAM, window=1)
    for number in range(300):
        publisher.session(f"sid-{number}")
    assert client.xlen(STREAM) == 300
    time.sleep(1.1)
    publisher.session("the-last")
    assert client.xlen(STREAM) == 1
    assert client.xrange(STREAM)[0][1][b"sid"] == b"the-last"


def test_a_publish_that_keeps_failing_raises_and_logs_an_error_event(caplog):
    dead = create_redis_client(f"redis://127.0.0.1:{free_port()}/0")  # auth's own client, nobody listening
    publisher = RevocationPublisher(dead, stream=STREAM, window=60)
    with caplog.at_level(logging.ERROR), pytest.raises(RevocationNotPublished):
        publisher.session("s-lost")
    [record] = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "revocation_publish_failed"]
    assert record.fields["sid"] == "s-lost"


@pytest.fixture(params=["standalone", "sentinel", "cluster"])
def any_topology_url(request: pytest.FixtureRequest, redis_server) -> str:
    """An empty Redis of each topology the feed may live on."""
    name = "standalone_redis_url" if request.param == "standalone" else f"redis_{request.param}_url"
    return request.getfixturevalue(name)


def test_a_follower_replays_what_was_published_before_it_started_then_follows(any_topology_url):
    redis_url = any_topology_url
    publisher = RevocationPublisher(create_redis_client(redis_url), stream=STREAM, window=60)
    publisher.session("before-start")
    publisher.user("u1", before=int(time.time()) + 1)
    state = RevocationState()
    feed = RevocationFeed(redis_url, STREAM, state)
    try:
        feed.ensure_started()  # the first call waits for the replay
        assert "before-start" in state.sessions and "u1" in state.users
        assert feed.status() == {"state": "live", "stale_seconds": 0}
        started = time.monotonic()
        publisher.session("after-start")
        while "after-start" not in state.sessions:
            assert time.monotonic() - started < 1.0, "the follower took more than a second"
            time.sleep(0.01)
    finally:
        feed.stop()


def test_a_follower_without_redis_serves_and_says_it_is_stale(caplog):
    feed = RevocationFeed(f"redis://127.0.0.1:{free_port()}/0", STREAM, RevocationState(), first_sync_wait=5)
    try:
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            feed.ensure_started()
            assert time.monotonic() - started < 2.5  # did not wait out the whole first-sync wait
        assert feed.status()["state"] == "stale"
        assert [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "revocation_feed_lost"]
    finally:
        feed.stop()


def test_the_keys_are_re_read_every_interval_even_without_a_feed(tmp_path, keys_dir, tokens):
    jwks = tmp_path / "jwks.json"
    jwks.write_text((keys_dir / "jwks.json").read_text())
    keys = JwksKeys(path=jwks)
    feed = RevocationFeed("", STREAM, RevocationState(), keys, jwks_refresh_interval=0.2)
    try:
        feed.ensure_started()
        assert feed.status() == {"state": "off"}
        assert tokens.kid in keys
        jwks.write_text(json.dumps({"keys": []}))  # the key was withdrawn
        started = time.monotonic()
        while tokens.kid in keys:
            assert time.monotonic() - started < 2, "the withdrawn key is still trusted"
            time.sleep(0.02)
    finally:
        feed.stop()
