"""Sessions and their rotating refresh tokens, in Redis.

A refresh token is `<session id>.<256-bit secret>`; Redis keeps only its SHA-256. Each refresh
replaces the token in one Lua script, so concurrent refreshes never fork a session:

- the current token rotates: it becomes the predecessor, a new token becomes current;
- the predecessor presented again within the grace window gets the current token back (the
  client racing itself, or a retried request whose answer was lost). To hand it back without
  storing it, the current token is kept encrypted under a key derived from the predecessor,
  which only its holder can present;
- the predecessor after the grace window, or any older token of the session, is theft: the
  whole session is revoked;
- anything else is unknown and changes nothing (a guessed token cannot log anybody out).

Keys (prefix `auth:` by default; `{sid}` is a hash tag so a session's keys share a cluster slot):
  session:{sid}        hash: user, token hashes, times, user agent; expires at the absolute limit
  session:{sid}:spent  set of the session's older token hashes, same expiry
  user:<id>:sessions   sorted set of the user's session ids by expiry, pruned as it is read

Topology: rotation and logout by token touch one session's keys only. Creating a session and
revoking one session write the user's index in the same script as the session's keys (another
slot), and logout-all builds session key names inside its script: these three need a single
Redis primary (with replicas for failover); on Redis Cluster they would fail with CROSSSLOT.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_USER_AGENT = 256

_CREATE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expires_at = now + tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'user_id', ARGV[2], 'email', ARGV[3], 'name', ARGV[4],
           'token_hash', ARGV[5], 'user_agent', ARGV[6], 'created_at', now, 'last_used_at', now,
           'expires_at', expires_at)
redis.call('PEXPIREAT', KEYS[1], expires_at)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], expires_at, ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return now
"""

_ROTATE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local s = redis.call('HMGET', KEYS[1], 'user_id', 'email', 'name', 'token_hash', 'prev_hash',
                     'prev_wrapped', 'rotated_at', 'expires_at')
if not s[1] then return {'invalid'} end
local presented = ARGV[1]
if s[4] == presented then
  redis.call('HSET', KEYS[1], 'token_hash', ARGV[2], 'prev_hash', presented,
             'prev_wrapped', ARGV[3], 'rotated_at', now, 'last_used_at', now)
  redis.call('SADD', KEYS[2], presented)
  redis.call('PEXPIREAT', KEYS[2], s[8])
  return {'rotated', s[1], s[2], s[3]}
end
if s[5] == presented and now - tonumber(s[7]) <= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'last_used_at', now)
  return {'grace', s[1], s[2], s[3], s[6]}
end
if s[5] == presented or redis.call('SISMEMBER', KEYS[2], presented) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', s[1]}
end
return {'invalid'}
"""

# Logout: only a holder of the current token or its predecessor may end the session.
_REVOKE_BY_TOKEN = """
local s = redis.call('HMGET', KEYS[1], 'user_id', 'token_hash', 'prev_hash')
if s[1] and (s[2] == ARGV[1] or s[3] == ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return s[1]
end
return false
"""

_REVOKE_OWNED = """
if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# Builds session key names inside the script, which a single Redis primary (with or without
# replicas) allows; on Redis Cluster the user's sessions would need one hash tag (see the top).
_REVOKE_ALL = """
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', ARGV[1] .. 'session:{' .. sid .. '}', ARGV[1] .. 'session:{' .. sid .. '}:spent')
end
redis.call('DEL', KEYS[1])
return #sids
"""


class InvalidRefreshToken(Exception):
    """The refresh token is missing, unknown, expired, revoked or was reused."""

    def __init__(self, reason: str, *, user_id: str | None = None, session_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The user data a session carries, so a refresh needs no database read."""

    id: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class Renewal:
    session_id: str
    user: SessionUser
    refresh_token: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _successor_key(token: str, session_id: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"refresh-successor:" + session_id.encode())
    return hkdf.derive(token.encode())


def _wrap_successor(predecessor: str, successor: str, session_id: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_successor_key(predecessor, session_id)).encrypt(nonce, successor.encode(), None)
    return (nonce + sealed).hex()


def _unwrap_successor(predecessor: str, wrapped: str, session_id: str) -> str:
    blob = bytes.fromhex(wrapped)
    return AESGCM(_successor_key(predecessor, session_id)).decrypt(blob[:12], blob[12:], None).decode()


def _session_id_of(token: str) -> str:
    session_id, dot, secret = token.partition(".")
    if not dot or len(session_id) != 32 or len(secret) < 43 or len(token) > 128:
        raise InvalidRefreshToken("malformed")
    return session_id


def _from_ms(value: str | bytes) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)


class SessionStore:
    def __init__(self, client: redis.Redis, *, prefix: str, ttl: int, reuse_grace: int) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl_ms = ttl * 1000
        self.grace_ms = reuse_grace * 1000
        self._create = client.register_script(_CREATE)
        self._rotate = client.register_script(_ROTATE)
        self._revoke_by_token = client.register_script(_REVOKE_BY_TOKEN)
        self._revoke_owned = client.register_script(_REVOKE_OWNED)
        self._revoke_all = client.register_script(_REVOKE_ALL)

    def _keys(self, session_id: str) -> list[str]:
        base = f"{self.prefix}session:{{{session_id}}}"
        return [base, base + ":spent"]

    def _index(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}:sessions"

    def create(self, user: SessionUser, user_agent: str) -> tuple[str, str]:
        """Start a session; return its id and first refresh token."""
        session_id = secrets.token_hex(16)
        token = f"{session_id}.{secrets.token_urlsafe(32)}"
        self._create(
            keys=[self._keys(session_id)[0], self._index(user.id)],
            args=[session_id, user.id, user.email, user.name, token_hash(token),
                  user_agent[:MAX_USER_AGENT], self.ttl_ms],
        )
        return session_id, token

    def rotate(self, token: str) -> Renewal:
        """Exchange a refresh token for its successor, atomically; see the module docstring."""
        session_id = _session_id_of(token)
        successor = f"{session_id}.{secrets.token_urlsafe(32)}"
        result = self._rotate(
            keys=self._keys(session_id),
            args=[token_hash(token), token_hash(successor), _wrap_successor(token, successor, session_id),
                  self.grace_ms],
        )
        outcome = result[0].decode()
        if outcome == "reused":
            raise InvalidRefreshToken("reused", user_id=result[1].decode(), session_id=session_id)
        if outcome == "invalid":
            raise InvalidRefreshToken("unknown")
        user = SessionUser(*(value.decode() for value in result[1:4]))
        if outcome == "grace":
            try:
                successor = _unwrap_successor(token, result[4].decode(), session_id)
            except (InvalidTag, ValueError):
                raise InvalidRefreshToken("unknown") from None
        return Renewal(session_id, user, successor)

    def revoke_by_token(self, token: str) -> None:
        """End the session of a current (or just-replaced) refresh token; unknown tokens are ignored."""
        try:
            session_id = _session_id_of(token)
        except InvalidRefreshToken:
            return
        user_id = self._revoke_by_token(keys=self._keys(session_id), args=[token_hash(token)])
        if user_id:
            self.redis.zrem(self._index(user_id.decode()), session_id)

    def revoke(self, user_id: str, session_id: str) -> bool:
        """End one of the user's sessions; False when the user has no such session."""
        return bool(self._revoke_owned(keys=[*self._keys(session_id), self._index(user_id)],
                                       args=[user_id, session_id]))

    def revoke_all(self, user_id: str) -> int:
        return int(self._revoke_all(keys=[self._index(user_id)], args=[self.prefix]))

    def is_active(self, user_id: str, session_id: str) -> bool:
        owner = self.redis.hget(self._keys(session_id)[0], "user_id")
        return owner is not None and owner.decode() == user_id

    def list(self, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, newest first; ids of ended sessions are pruned on the way."""
        index = self._index(user_id)
        session_ids = [sid.decode() for sid in self.redis.zrange(index, 0, -1)]
        if not session_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hmget(self._keys(session_id)[0], "user_id", "created_at", "last_used_at", "user_agent")
        sessions, ended = [], []
        for session_id, (owner, created, used, agent) in zip(session_ids, pipe.execute()):
            if owner is None or owner.decode() != user_id:
                ended.append(session_id)
                continue
            sessions.append(SessionInfo(session_id, _from_ms(created), _from_ms(used), agent.decode()))
        if ended:
            self.redis.zrem(index, *ended)
        return sorted(sessions, key=lambda s: s.created_at, reverse=True)

    def revoke_everyone(self) -> int:
        """End every session of every user (key compromise); return how many sessions ended."""
        sessions = 0
        for pattern in (f"{self.prefix}session:*", f"{self.prefix}user:*:sessions"):
            keys = list(self.redis.scan_iter(match=pattern, count=1000))
            sessions += sum(1 for key in keys if key.endswith(b"}"))  # the hashes, not the spent sets
            for start in range(0, len(keys), 1000):
                self.redis.delete(*keys[start:start + 1000])
        return sessions

    def ping(self) -> None:
        self.redis.ping()
