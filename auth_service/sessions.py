"""Sessions and their rotating refresh tokens, in Redis, in constant memory.

A refresh token is `<session id>.<generation>.<proof>`: the proof is an HMAC of the generation
under the session's own key, which is an HMAC of the session id under the refresh key that only
auth holds (REFRESH_KEY_PATH). Redis keeps no token material at all, only each session's current
generation and when it last rotated, so a copy of Redis yields no token, and the memory a session
takes does not grow with its refreshes. A refresh:

- checks the proof first, in constant time: a guessed or forged token never reaches Redis, so it
  cannot change anything (nor log anybody out);
- the current generation rotates: the next one becomes current, in one Lua script, so concurrent
  refreshes never fork a session;
- the previous generation within the grace window gets the current generation's token back (the
  client racing itself, or a retried request whose answer was lost): the same token the racer got;
- the previous generation after the grace window, or any older one, is theft: the whole session is
  revoked;
- anything else (an ended session, a generation not yet issued) is unknown and changes nothing.

Keys (prefix `auth:` by default). A user's keys share one hash tag, `{<slot>}`: 4 hex digits of
a hash of the user id, which also begin each of the user's session ids. So every script below
touches one Redis Cluster slot, and a refresh token (which starts with its session id) says where
its session lives without naming the user:
  {<slot>}:s:<sid>         string: a JSON array of user id, email, name, generation, times and user
                           agent (see F); expires at the absolute limit
  {<slot>}:s:<sid>:ended   hash: who ended the session and its last generation, kept as long as a
                           revocation can matter, so that a logout or DELETE retried after its
                           announcement failed (503) is announced again instead of being a no-op
  {<slot>}:u:<user id>     sorted set of the user's session ids by expiry, pruned as it is read

Every write a client is told about waits for the replicas (shared/redis_client.ReplicatedWrites),
so a failover loses no session, rotation or logout that was acknowledged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.redis_client import RedisClient, ReplicatedWrites

MAX_USER_AGENT = 256
USER_KEY_DIGITS = 16  # hex digits of the user's pseudonym, which starts every session id
_SESSION_ID = re.compile("[0-9a-f]{32}")
_REFRESH_TOKEN = re.compile(r"([0-9a-f]{32})\.(0|[1-9][0-9]{0,8})\.([A-Za-z0-9_-]{43})")


class F:
    """A session's fields, by their place in its JSON array (counted from 1, as Lua does): Python
    and every script (as the Lua table F: F.generation is 1) name them here, never by number."""

    generation = 1
    rotated_at = 2
    created_at = 3
    last_used_at = 4
    expires_at = 5
    user_agent = 6
    jkt = 7  # a bound session's DPoP key thumbprint (auth_service/dpop.py); absent when unbound


SESSION_FIELDS = tuple(key for key in vars(F) if not key.startswith("_"))
_FIELD_TABLE = "local F = {" + ", ".join(f"{key} = {getattr(F, key)}" for key in SESSION_FIELDS) + "}\n"
# In every script: the clock, and a user's document as a Lua table, without the sessions past their
# absolute limit; saved, it lives as long as its longest session, and goes when none is left.
_DOCUMENT_CODEC = """
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local doc = cjson.decode(raw)
  local now = now_ms()
  for sid, s in pairs(doc.s) do
    if s[F.expires_at] <= now then doc.s[sid] = nil end
  end
  return doc
end
local function save(key, doc)
  local last = 0
  for _, s in pairs(doc.s) do
    if s[F.expires_at] > last then last = s[F.expires_at] end
  end
  if last == 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, cjson.encode(doc), 'PXAT', last)
  end
end
"""


class SessionScript:
    """A Lua script whose arguments are named: the names bind ARGV in order, calls pass them by name."""

    def __init__(self, client: RedisClient, body: str, *, args: tuple[str, ...] = ()) -> None:
        prelude = "".join(f"local {name} = ARGV[{position}]\n" for position, name in enumerate(args, 1))
        self.args = args
        self.script = client.register_script(_FIELD_TABLE + _DOCUMENT_CODEC + prelude + body)

    def values(self, args: dict[str, str | int]) -> list[str | int]:
        """ARGV in the script's order; a missing or unknown name is a TypeError."""
        if set(args) != set(self.args):
            raise TypeError(f"script arguments {sorted(args)} are not {sorted(self.args)}")
        return [args[name] for name in self.args]

    def __call__(self, *, keys: list[str], **args: str | int) -> Any:
        return self.script(keys=keys, args=self.values(args))


# KEYS: the user's document. Over the cap, the sessions that expire first (the oldest logins) end,
# never the new one; their ids are returned.
_CREATE = """
local now = now_ms()
local doc = load(KEYS[1]) or {s = {}}
doc.u, doc.e, doc.n = user_id, email, name
local s = {}
s[F.generation], s[F.rotated_at], s[F.created_at], s[F.last_used_at] = 0, 0, now, now
s[F.expires_at], s[F.user_agent] = now + tonumber(lifetime_ms), user_agent
if jkt ~= '' then s[F.jkt] = jkt end
doc.s[session_id] = s
local ids = {}
for sid in pairs(doc.s) do table.insert(ids, sid) end
local ended = {}
local excess = #ids - tonumber(max_sessions)
if excess > 0 then
  table.sort(ids, function(a, b)
    if a == session_id or b == session_id then return b == session_id and a ~= session_id end
    return doc.s[a][F.expires_at] < doc.s[b][F.expires_at]
  end)
  for i = 1, excess do
    doc.s[ids[i]] = nil
    table.insert(ended, ids[i])
  end
end
save(KEYS[1], doc)
return ended
"""
_CREATE_ARGS = ("session_id", "user_id", "email", "name", "user_agent", "lifetime_ms", "max_sessions", "jkt")
# A bound session answers only to a proof of its key (`jkt`: the proof's thumbprint, '' without one);
# anything else changes nothing, so a thief with the cookie can neither refresh nor log the owner out.
_KEY_CHECK = """
local function wrong_key(s)
  if s[F.jkt] == nil or s[F.jkt] == jkt then return false end
  if jkt == '' then return 'missing' end
  return 'wrong_key'
end
"""

# `presented` is the generation of a token whose proof checked out. KEYS: the user's document.
_ROTATE = (
    _KEY_CHECK
    + """
local now = now_ms()
local doc = load(KEYS[1])
local s = doc and doc.s[session_id]
if not s then return {'invalid'} end
local refused = wrong_key(s)
if refused then return {'wrong_key', refused} end
local current = s[F.generation]
local generation = tonumber(presented)
if generation == current then
  s[F.generation], s[F.rotated_at], s[F.last_used_at] = current + 1, now, now
  save(KEYS[1], doc)
  return {'rotated', doc.u, doc.e, doc.n, current + 1, s[F.jkt] or ''}
end
-- Strictly inside the window: with no grace (0) a replaced token is reuse even in the same millisecond.
if generation == current - 1 and now - s[F.rotated_at] < tonumber(grace_ms) then
  -- A write, so that WAIT on this connection also covers the rotation another request made.
  s[F.last_used_at] = now
  save(KEYS[1], doc)
  return {'grace', doc.u, doc.e, doc.n, current, s[F.jkt] or ''}
end
if generation < current then
  doc.s[session_id] = nil
  save(KEYS[1], doc)
  return {'reused', doc.u}
end
return {'invalid'}
"""
)
_ROTATE_ARGS = ("session_id", "presented", "grace_ms", "jkt")

# Logout: only a holder of the current generation or the previous one may end the session, or
# repeat the ending of a session it ended (its announcement may have failed).
# KEYS: the user's document, the session's ended marker.
_REVOKE_BY_TOKEN = (
    _KEY_CHECK
    + """
local generation = tonumber(presented)
local function covers(user, last) return user and generation >= tonumber(last) - 1 and generation <= tonumber(last) end
local doc = load(KEYS[1])
local s = doc and doc.s[session_id]
local refused = s and wrong_key(s)
if refused then return {refused} end
if s and covers(doc.u, s[F.generation]) then
  doc.s[session_id] = nil
  save(KEYS[1], doc)
  redis.call('HSET', KEYS[2], 'user', doc.u, 'last', s[F.generation])
  redis.call('PEXPIRE', KEYS[2], ended_ttl_ms)
  return doc.u
end
local ended = redis.call('HMGET', KEYS[2], 'user', 'last')
if covers(ended[1], ended[2]) then return ended[1] end
return false
"""
)

# KEYS: the user's document, the session's ended marker.
_REVOKE_OWNED = """
local doc = load(KEYS[1])
if not (doc and doc.u == user_id and doc.s[session_id]) then
  if redis.call('HGET', KEYS[2], 'user') == user_id then return 1 end
  return 0
end
doc.s[session_id] = nil
save(KEYS[1], doc)
redis.call('HSET', KEYS[2], 'user', user_id, 'last', -2)
redis.call('PEXPIRE', KEYS[2], ended_ttl_ms)
return 1
"""

# KEYS: the user's document.
_REVOKE_ALL = """
local doc = load(KEYS[1])
if not doc then return 0 end
local sessions = 0
for _ in pairs(doc.s) do sessions = sessions + 1 end
redis.call('DEL', KEYS[1])
return sessions
"""


class SessionKeyMismatch(Exception):
    """The session is bound to a DPoP key and the request has no proof of it (`reason`: missing or
    wrong_key); nothing was changed."""

    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(reason)
        self.session_id = session_id
        self.reason = reason


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
    grace: bool = False  # a race's loser got the winner's generation back (see the module docstring)
    jkt: str = ""  # the DPoP key thumbprint the session is bound to, '' when unbound


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str


class RefreshTokens:
    """Make and check refresh tokens: `<session id>.<generation>.<proof>`, the proof being
    HMAC-SHA256(HMAC-SHA256(refresh key, session id), generation), base64url."""

    def __init__(self, refresh_key: bytes) -> None:
        if len(refresh_key) < 32:
            raise ValueError("the refresh key must be at least 32 bytes")
        self._key = refresh_key
        # The HMAC of the session keys with the refresh key and the label already absorbed, copied
        # per session rather than set up again (OpenSSL's HMAC set-up costs as much as the hashing).
        self._session_keys = hmac.new(refresh_key, b"refresh-session:", hashlib.sha256)
        # A rotation checks the presented token and makes its successor under the same session key:
        # the last one is kept, as one tuple replaced whole, so threads never pair an id with another's key.
        self._last_session: tuple[str, bytes] = ("", b"")

    def _session_key(self, session_id: str) -> bytes:
        last_id, last_key = self._last_session
        if last_id == session_id:
            return last_key
        mac = self._session_keys.copy()
        mac.update(session_id.encode())
        key = mac.digest()
        self._last_session = (session_id, key)
        return key

    def _proof(self, session_id: str, generation: int) -> str:
        mac = hmac.digest(self._session_key(session_id), b"generation:" + str(generation).encode(), "sha256")
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def user_key(self, user_id: str) -> str:
        """The user's pseudonym in Redis: it names (and hash-tags) the user's document and starts each
        of the user's session ids, so a refresh token finds its session without naming the user."""
        return hmac.digest(self._key, b"user:" + user_id.encode(), "sha256").hex()[:USER_KEY_DIGITS]

    def new_session_id(self, user_id: str) -> str:
        return self.user_key(user_id) + secrets.token_hex((32 - USER_KEY_DIGITS) // 2)

    def make(self, session_id: str, generation: int) -> str:
        return f"{session_id}.{generation}.{self._proof(session_id, generation)}"

    def check(self, token: str) -> tuple[str, int]:
        """The session id and generation of a token auth made; InvalidRefreshToken otherwise."""
        parts = _REFRESH_TOKEN.fullmatch(token)
        if parts is None:
            raise InvalidRefreshToken("malformed")
        session_id, generation = parts[1], int(parts[2])
        if not hmac.compare_digest(parts[3], self._proof(session_id, generation)):
            raise InvalidRefreshToken("unknown")  # forged or guessed: Redis is not even asked
        return session_id, generation


def _text(value: Any) -> str:
    """A Redis reply as text (the client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class SessionStore:
    def __init__(
        self,
        client: RedisClient,
        *,
        refresh_key: bytes,
        prefix: str,
        ttl: int,
        reuse_grace: int,
        max_per_user: int = 50,
        ended_ttl: int = 3665,
        writes: ReplicatedWrites | None = None,
    ) -> None:
        self.redis = client
        self.tokens = RefreshTokens(refresh_key)
        self.prefix = prefix
        self.ttl_ms = ttl * 1000
        self.grace_ms = reuse_grace * 1000
        self.max_per_user = max_per_user
        self.ended_ttl_ms = ended_ttl * 1000
        self.writes = writes or ReplicatedWrites(client, min_replicas=None)
        self._create = SessionScript(client, _CREATE, args=_CREATE_ARGS)
        self._rotate = SessionScript(client, _ROTATE, args=_ROTATE_ARGS)
        self._revoke_by_token = SessionScript(
            client, _REVOKE_BY_TOKEN, args=("session_id", "presented", "ended_ttl_ms", "jkt")
        )
        self._revoke_owned = SessionScript(client, _REVOKE_OWNED, args=("user_id", "session_id", "ended_ttl_ms"))
        self._revoke_all = SessionScript(client, _REVOKE_ALL)

    def _document(self, user_key: str) -> str:
        return f"{self.prefix}u:{{{user_key}}}"

    def _document_of(self, session_id: str) -> str:
        return self._document(session_id[:USER_KEY_DIGITS])

    def _ended(self, session_id: str) -> str:
        return f"{self._document_of(session_id)}:ended:{session_id}"

    def _write(self, script: SessionScript, keys: list[str], **args: str | int) -> Any:
        """Run a script that changes sessions, confirmed by the replicas before anyone is told."""
        return self.writes.run_script(script.script, keys, script.values(args))

    def create(self, user: SessionUser, user_agent: str, jkt: str = "") -> tuple[str, str, list[str]]:
        """Start a session (bound to the DPoP key `jkt` if given); return its id, first refresh
        token, and the ids of the sessions that ended because the user was past the cap (the oldest)."""
        session_id = self.tokens.new_session_id(user.id)
        ended = self._write(
            self._create,
            [self._document_of(session_id)],
            session_id=session_id,
            user_id=user.id,
            email=user.email,
            name=user.name,
            user_agent=user_agent[:MAX_USER_AGENT],
            lifetime_ms=self.ttl_ms,
            max_sessions=self.max_per_user,
            jkt=jkt,
        )
        return session_id, self.tokens.make(session_id, 0), [_text(sid) for sid in ended]

    def rotate(self, token: str, jkt: str = "") -> Renewal:
        """Exchange a refresh token for its successor, atomically; see the module docstring. A bound
        session needs `jkt`, the thumbprint of a checked DPoP proof's key (SessionKeyMismatch)."""
        session_id, generation = self.tokens.check(token)
        result = self._write(
            self._rotate,
            [self._document_of(session_id)],
            session_id=session_id,
            presented=generation,
            grace_ms=self.grace_ms,
            jkt=jkt,
        )
        outcome = _text(result[0])
        if outcome == "wrong_key":
            raise SessionKeyMismatch(session_id, _text(result[1]))
        if outcome == "reused":
            raise InvalidRefreshToken("reused", user_id=_text(result[1]), session_id=session_id)
        if outcome == "invalid":
            raise InvalidRefreshToken("unknown")
        user = SessionUser(*(_text(value) for value in result[1:4]))
        return Renewal(
            session_id,
            user,
            self.tokens.make(session_id, int(result[4])),
            grace=outcome == "grace",
            jkt=_text(result[5]),
        )

    def revoke_by_token(self, token: str, jkt: str = "") -> str | None:
        """End the session of a current (or just-replaced) refresh token and return its id (also
        when this token already ended it); unknown tokens are ignored (None). A bound session
        needs `jkt`, as for rotate()."""
        try:
            session_id, generation = self.tokens.check(token)
        except InvalidRefreshToken:
            return None
        user_id = self._write(
            self._revoke_by_token,
            [self._document_of(session_id), self._ended(session_id)],
            session_id=session_id,
            presented=generation,
            ended_ttl_ms=self.ended_ttl_ms,
            jkt=jkt,
        )
        if isinstance(user_id, list):
            raise SessionKeyMismatch(session_id, _text(user_id[0]))
        return session_id if user_id else None

    def revoke(self, user_id: str, session_id: str) -> bool:
        """End one of the user's sessions (True also when the user just ended it); False when the
        user has no such session."""
        if not _SESSION_ID.fullmatch(session_id) or not session_id.startswith(self.tokens.user_key(user_id)):
            return False  # not an id this user's sessions can have
        return bool(
            self._write(
                self._revoke_owned,
                [self._document_of(session_id), self._ended(session_id)],
                user_id=user_id,
                session_id=session_id,
                ended_ttl_ms=self.ended_ttl_ms,
            )
        )

    def revoke_all(self, user_id: str) -> int:
        return int(self._write(self._revoke_all, [self._document(self.tokens.user_key(user_id))]))

    def _live_sessions(self, user_id: str) -> dict[str, list[Any]]:
        raw = self.redis.get(self._document(self.tokens.user_key(user_id)))
        if raw is None:
            return {}
        document = json.loads(raw)
        if document["u"] != user_id:
            return {}
        now_ms = datetime.now(UTC).timestamp() * 1000
        return {sid: fields for sid, fields in document["s"].items() if fields[F.expires_at - 1] > now_ms}

    def is_active(self, user_id: str, session_id: str) -> bool:
        return session_id in self._live_sessions(user_id)

    def list(self, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, newest first."""
        sessions = [
            SessionInfo(
                sid,
                _from_ms(fields[F.created_at - 1]),
                _from_ms(fields[F.last_used_at - 1]),
                fields[F.user_agent - 1],
            )
            for sid, fields in self._live_sessions(user_id).items()
        ]
        return sorted(sessions, key=lambda s: s.created_at, reverse=True)

    def revoke_everyone(self) -> int:
        """End every session of every user (key compromise); return how many sessions ended. On a
        Cluster the scan visits every primary."""
        keys = [_text(key) for key in self.redis.scan_iter(match=f"{self.prefix}u:{{*}}*", count=1000)]
        documents = [key for key in keys if key.endswith("}")]
        sessions = 0
        for start in range(0, len(documents), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for key in documents[start : start + 1000]:
                pipe.get(key)
            sessions += sum(len(json.loads(raw)["s"]) for raw in pipe.execute() if raw is not None)
        for start in range(0, len(keys), 1000):
            self.redis.delete(*keys[start : start + 1000])  # a Cluster client splits it by slot
        return sessions

    def ping(self) -> None:
        self.redis.ping()
