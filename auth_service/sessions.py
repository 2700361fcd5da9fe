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

Keys (prefix `auth:` by default). A user's keys share one hash tag, `{<slot>}`: 4 hex digits of
a hash of the user id, which also begin each of the user's session ids. So every script below
touches one Redis Cluster slot, and a refresh token (which starts with its session id) says where
its session lives without naming the user:
  {<slot>}:session:<sid>         hash: user, token hashes, times, user agent; expires at the absolute limit
  {<slot>}:session:<sid>:spent   set of the session's older token hashes, same expiry
  {<slot>}:session:<sid>:ended   hash: who ended the session (and its last token hashes, for a logout),
                                 kept as long as a revocation can matter, so that a logout or DELETE
                                 retried after its announcement failed (503) is announced again
                                 instead of being a no-op
  {<slot>}:user:<id>:sessions    sorted set of the user's session ids by expiry, pruned as it is read

Every write a client is told about waits for the replicas (shared/redis_client.ReplicatedWrites),
so a failover loses no session, rotation or logout that was acknowledged.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.redis_client import RedisClient, ReplicatedWrites

MAX_USER_AGENT = 256
SLOT_DIGITS = 4  # hex digits of the hash tag that starts every session id
_SESSION_ID = re.compile("[0-9a-f]{32}")


class F:
    """The session hash's fields, named once: Python reads them by these names, and every script
    gets them as the Lua table F (F.token_hash is 'token_hash'), so adding a field touches this
    class and the code that uses it, never a position."""

    user_id = "user_id"
    email = "email"
    name = "name"
    token_hash = "token_hash"  # noqa: S105 - a field name
    prev_hash = "prev_hash"
    prev_wrapped = "prev_wrapped"
    rotated_at = "rotated_at"
    user_agent = "user_agent"
    created_at = "created_at"
    last_used_at = "last_used_at"
    expires_at = "expires_at"


SESSION_FIELDS = tuple(value for key, value in vars(F).items() if not key.startswith("_"))
_FIELD_TABLE = "local F = {" + ", ".join(f"{name} = '{name}'" for name in SESSION_FIELDS) + "}\n"
# In every script: read named fields of a hash into a table (s.user_id), false where absent.
_READ_FIELDS = """
local function read(key, ...)
  local names = {...}
  local values = redis.call('HMGET', key, unpack(names))
  local fields = {}
  for i, name in ipairs(names) do fields[name] = values[i] end
  return fields
end
"""


class SessionScript:
    """A Lua script whose arguments are named: the names bind ARGV in order, calls pass them by name."""

    def __init__(self, client: RedisClient, body: str, *, args: tuple[str, ...] = ()) -> None:
        prelude = "".join(f"local {name} = ARGV[{position}]\n" for position, name in enumerate(args, 1))
        self.args = args
        self.script = client.register_script(_FIELD_TABLE + _READ_FIELDS + prelude + body)

    def values(self, args: dict[str, str | int]) -> list[str | int]:
        """ARGV in the script's order; a missing or unknown name is a TypeError."""
        if set(args) != set(self.args):
            raise TypeError(f"script arguments {sorted(args)} are not {sorted(self.args)}")
        return [args[name] for name in self.args]

    def __call__(self, *, keys: list[str], **args: str | int) -> Any:
        return self.script(keys=keys, args=self.values(args))


# `sessions` is the user's session key prefix, `{<slot>}:session:`: every session of the index is
# in the same slot. KEYS: the new session's hash, the user's index.
_CREATE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expires_at = now + tonumber(lifetime_ms)
redis.call('HSET', KEYS[1], F.user_id, user_id, F.email, email, F.name, name, F.token_hash, token_hash,
           F.user_agent, user_agent, F.created_at, now, F.last_used_at, now, F.expires_at, expires_at)
redis.call('PEXPIREAT', KEYS[1], expires_at)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
-- Forget index entries of sessions that ended early (reuse, logout), so that only live ones count.
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', sessions .. sid) == 0 then redis.call('ZREM', KEYS[2], sid) end
end
redis.call('ZADD', KEYS[2], expires_at, session_id)
-- Over the cap, the sessions that expire first (the oldest logins) end; their ids are returned.
local ended = {}
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(max_sessions)
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #oldest, 2 do
    redis.call('DEL', sessions .. oldest[i], sessions .. oldest[i] .. ':spent')
    table.insert(ended, oldest[i])
  end
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return ended
"""
_CREATE_ARGS = (
    "session_id",
    "user_id",
    "email",
    "name",
    "token_hash",
    "user_agent",
    "lifetime_ms",
    "max_sessions",
    "sessions",
)

# KEYS: the session's hash, its spent set.
_ROTATE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local s = read(KEYS[1], F.user_id, F.email, F.name, F.token_hash, F.prev_hash, F.prev_wrapped, F.rotated_at,
               F.expires_at)
if not s.user_id then return {'invalid'} end
if s.token_hash == presented then
  redis.call('HSET', KEYS[1], F.token_hash, successor_hash, F.prev_hash, presented,
             F.prev_wrapped, successor_wrapped, F.rotated_at, now, F.last_used_at, now)
  redis.call('SADD', KEYS[2], presented)
  redis.call('PEXPIREAT', KEYS[2], s.expires_at)
  return {'rotated', s.user_id, s.email, s.name}
end
if s.prev_hash == presented and now - tonumber(s.rotated_at) <= tonumber(grace_ms) then
  redis.call('HSET', KEYS[1], F.last_used_at, now)
  return {'grace', s.user_id, s.email, s.name, s.prev_wrapped}
end
if s.prev_hash == presented or redis.call('SISMEMBER', KEYS[2], presented) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', s.user_id}
end
return {'invalid'}
"""
_ROTATE_ARGS = ("presented", "successor_hash", "successor_wrapped", "grace_ms")

# Logout: only a holder of the current token or its predecessor may end the session, or repeat
# the ending of a session it ended (its announcement may have failed).
# KEYS: the session's hash, its spent set, its ended marker; `users` is the slot's `{<slot>}:user:`.
_REVOKE_BY_TOKEN = """
local s = read(KEYS[1], F.user_id, F.token_hash, F.prev_hash)
if s.user_id and (s.token_hash == presented or s.prev_hash == presented) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', users .. s.user_id .. ':sessions', session_id)
  redis.call('HSET', KEYS[3], F.user_id, s.user_id, F.token_hash, s.token_hash, F.prev_hash, s.prev_hash or '')
  redis.call('PEXPIRE', KEYS[3], ended_ttl_ms)
  return s.user_id
end
local e = read(KEYS[3], F.user_id, F.token_hash, F.prev_hash)
if e.user_id and (e.token_hash == presented or e.prev_hash == presented) then return e.user_id end
return false
"""  # noqa: S105 - a script, not a secret

# KEYS: the session's hash, its spent set, the user's index, its ended marker.
_REVOKE_OWNED = """
if redis.call('HGET', KEYS[1], F.user_id) ~= user_id then
  if redis.call('HGET', KEYS[4], F.user_id) == user_id then return 1 end
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], session_id)
redis.call('HSET', KEYS[4], F.user_id, user_id)
redis.call('PEXPIRE', KEYS[4], ended_ttl_ms)
return 1
"""

# KEYS: the user's index.
_REVOKE_ALL = """
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', sessions .. sid, sessions .. sid .. ':spent')
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
    if not dot or not _SESSION_ID.fullmatch(session_id) or len(secret) < 43 or len(token) > 128:
        raise InvalidRefreshToken("malformed")
    return session_id


def _text(value: Any) -> str:
    """A Redis reply as text (the client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_ms(value: str | bytes) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def slot_of(user_id: str) -> str:
    """The hash tag of a user's keys: 4 hex digits of a hash of the user id (65,536 tags spread
    over the 16,384 cluster slots). It starts every session id of the user, so a refresh token
    finds its slot, and it tells nobody who the user is."""
    return hashlib.sha256(b"session-slot:" + user_id.encode()).hexdigest()[:SLOT_DIGITS]


class SessionStore:
    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str,
        ttl: int,
        reuse_grace: int,
        max_per_user: int = 50,
        ended_ttl: int = 3665,
        writes: ReplicatedWrites | None = None,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl_ms = ttl * 1000
        self.grace_ms = reuse_grace * 1000
        self.max_per_user = max_per_user
        self.ended_ttl_ms = ended_ttl * 1000
        self.writes = writes or ReplicatedWrites(client, min_replicas=None)
        self._create = SessionScript(client, _CREATE, args=_CREATE_ARGS)
        self._rotate = SessionScript(client, _ROTATE, args=_ROTATE_ARGS)
        self._revoke_by_token = SessionScript(
            client, _REVOKE_BY_TOKEN, args=("presented", "session_id", "users", "ended_ttl_ms")
        )
        self._revoke_owned = SessionScript(client, _REVOKE_OWNED, args=("user_id", "session_id", "ended_ttl_ms"))
        self._revoke_all = SessionScript(client, _REVOKE_ALL, args=("sessions",))

    def _slot(self, slot: str) -> str:
        return f"{self.prefix}{{{slot}}}:"

    def _sessions(self, session_id: str) -> str:
        """The key prefix of the sessions in this session id's slot."""
        return self._slot(session_id[:SLOT_DIGITS]) + "session:"

    def _keys(self, session_id: str) -> list[str]:
        base = self._sessions(session_id) + session_id
        return [base, base + ":spent"]

    def _ended(self, session_id: str) -> str:
        return self._sessions(session_id) + session_id + ":ended"

    def _index(self, user_id: str) -> str:
        return self._slot(slot_of(user_id)) + f"user:{user_id}:sessions"

    def _write(self, script: SessionScript, keys: list[str], **args: str | int) -> Any:
        """Run a script that changes sessions, confirmed by the replicas before anyone is told."""
        return self.writes.run_script(script.script, keys, script.values(args))

    def create(self, user: SessionUser, user_agent: str) -> tuple[str, str, list[str]]:
        """Start a session; return its id, first refresh token, and the ids of the sessions that
        ended because the user was past the cap (the oldest)."""
        session_id = slot_of(user.id) + secrets.token_hex(16 - SLOT_DIGITS // 2)
        token = f"{session_id}.{secrets.token_urlsafe(32)}"
        ended = self._write(
            self._create,
            [self._keys(session_id)[0], self._index(user.id)],
            session_id=session_id,
            user_id=user.id,
            email=user.email,
            name=user.name,
            token_hash=token_hash(token),
            user_agent=user_agent[:MAX_USER_AGENT],
            lifetime_ms=self.ttl_ms,
            max_sessions=self.max_per_user,
            sessions=self._sessions(session_id),
        )
        return session_id, token, [_text(sid) for sid in ended]

    def rotate(self, token: str) -> Renewal:
        """Exchange a refresh token for its successor, atomically; see the module docstring."""
        session_id = _session_id_of(token)
        successor = f"{session_id}.{secrets.token_urlsafe(32)}"
        result = self._write(
            self._rotate,
            self._keys(session_id),
            presented=token_hash(token),
            successor_hash=token_hash(successor),
            successor_wrapped=_wrap_successor(token, successor, session_id),
            grace_ms=self.grace_ms,
        )
        outcome = _text(result[0])
        if outcome == "reused":
            raise InvalidRefreshToken("reused", user_id=_text(result[1]), session_id=session_id)
        if outcome == "invalid":
            raise InvalidRefreshToken("unknown")
        user = SessionUser(*(_text(value) for value in result[1:4]))
        if outcome == "grace":
            try:
                successor = _unwrap_successor(token, _text(result[4]), session_id)
            except (InvalidTag, ValueError):
                raise InvalidRefreshToken("unknown") from None
        return Renewal(session_id, user, successor)

    def revoke_by_token(self, token: str) -> str | None:
        """End the session of a current (or just-replaced) refresh token and return its id (also
        when this token already ended it); unknown tokens are ignored (None)."""
        try:
            session_id = _session_id_of(token)
        except InvalidRefreshToken:
            return None
        user_id = self._write(
            self._revoke_by_token,
            [*self._keys(session_id), self._ended(session_id)],
            presented=token_hash(token),
            session_id=session_id,
            users=self._slot(session_id[:SLOT_DIGITS]) + "user:",
            ended_ttl_ms=self.ended_ttl_ms,
        )
        return session_id if user_id else None

    def revoke(self, user_id: str, session_id: str) -> bool:
        """End one of the user's sessions (True also when the user just ended it); False when the
        user has no such session."""
        if not _SESSION_ID.fullmatch(session_id) or session_id[:SLOT_DIGITS] != slot_of(user_id):
            return False  # not an id this user's sessions can have
        return bool(
            self._write(
                self._revoke_owned,
                [*self._keys(session_id), self._index(user_id), self._ended(session_id)],
                user_id=user_id,
                session_id=session_id,
                ended_ttl_ms=self.ended_ttl_ms,
            )
        )

    def revoke_all(self, user_id: str) -> int:
        index = self._index(user_id)
        return int(self._write(self._revoke_all, [index], sessions=self._slot(slot_of(user_id)) + "session:"))

    def is_active(self, user_id: str, session_id: str) -> bool:
        owner = self.redis.hget(self._keys(session_id)[0], F.user_id)
        return owner is not None and _text(owner) == user_id

    def list(self, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, newest first; ids of ended sessions are pruned on the way."""
        index = self._index(user_id)
        session_ids = [_text(sid) for sid in self.redis.zrange(index, 0, -1)]
        if not session_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hmget(self._keys(session_id)[0], F.user_id, F.created_at, F.last_used_at, F.user_agent)
        sessions, ended = [], []
        for session_id, (owner, created, used, agent) in zip(session_ids, pipe.execute(), strict=True):
            if owner is None or _text(owner) != user_id:
                ended.append(session_id)
                continue
            sessions.append(SessionInfo(session_id, _from_ms(created), _from_ms(used), _text(agent)))
        if ended:
            self.redis.zrem(index, *ended)
        return sorted(sessions, key=lambda s: s.created_at, reverse=True)

    def revoke_everyone(self) -> int:
        """End every session of every user (key compromise); return how many sessions ended. On a
        Cluster the scan visits every primary."""
        sessions = 0
        for pattern in (f"{self.prefix}{{*}}:session:*", f"{self.prefix}{{*}}:user:*:sessions"):
            keys = [_text(key) for key in self.redis.scan_iter(match=pattern, count=1000)]
            sessions += sum(1 for key in keys if _SESSION_ID.fullmatch(key.rpartition(":")[2]))  # hashes only
            for start in range(0, len(keys), 1000):
                self.redis.delete(*keys[start : start + 1000])  # a Cluster client splits it by slot
        return sessions

    def ping(self) -> None:
        self.redis.ping()
