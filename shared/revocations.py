"""The revocation feed: auth publishes every revocation to a Redis Stream; each resource process
follows it in a background thread and answers "is this token revoked?" from memory.

Events (XADD fields; `until` is when the entry stops mattering: no token it covers is still valid):
  type=session  sid=<sid>                   the session ended (logout, revoke one, theft, ...)
  type=user     sub=<user id> before=<T>    tokens of the user issued before T (logout-all)
  type=everyone before=<T>                  every token issued before T (`sessions revoke-all`)
  type=key      kid=<kid>                   the key was withdrawn (`keys rotate --drop-old`)

Auth trims the stream to the events younger than the longest access-token lifetime plus leeway
(and a margin), so a process that (re)starts replays the whole stream and misses nothing that
can still matter, without knowing the token lifetime itself.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import redis

from shared.redis_client import REDIS_UNAVAILABLE_ERRORS, RedisClient, ReplicatedWrites, create_redis_client

if TYPE_CHECKING:
    from shared.access_tokens import Caller, JwksKeys
    from shared.metrics import ServiceMetrics

log = logging.getLogger("shared.revocations")

STREAM_SUFFIX = "revocations"
FEED_ERRORS: tuple[type[BaseException], ...] = (*REDIS_UNAVAILABLE_ERRORS, redis.exceptions.ResponseError)


def cut_off_now() -> int:
    """The `before` of a cut-off made now: iat has whole seconds, so a token issued earlier in this
    second is covered too (a login in the same second must wait for the next one)."""
    return math.ceil(time.time())


class RevocationState:
    """What this process knows was revoked, answered with dict lookups only (no I/O, no lock).

    Only the feed thread writes; pruning builds new dicts and swaps them in, so readers in other
    threads never see a dict change under an iteration.
    """

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}  # sid -> forget at
        self.users: dict[str, tuple[int, float]] = {}  # sub -> (before, forget at)
        self.everyone_before = 0
        self.everyone_forget_at = 0.0
        self.withdrawn_kids: dict[str, float] = {}  # kid -> forget at

    def __len__(self) -> int:
        return len(self.sessions) + len(self.users) + len(self.withdrawn_kids) + (1 if self.everyone_before else 0)

    def refusal(self, caller: Caller) -> str | None:
        """Why `caller`'s token is revoked, or None when it is not."""
        if caller.session_id in self.sessions:
            return "The session of this token has ended"
        user = self.users.get(caller.id)
        if user is not None and caller.issued_at < user[0]:
            return "Every session of this user was ended"
        if caller.issued_at < self.everyone_before:
            return "Every session was ended"
        return None

    def key_withdrawn(self, kid: str) -> bool:
        return kid in self.withdrawn_kids

    def apply(self, fields: Mapping[str, str], *, now: float | None = None) -> str | None:
        """Record one event; return its type, or None for an event this version does not know."""
        now = time.time() if now is None else now
        kind = fields.get("type")
        try:
            until = float(fields["until"])
            if until <= now:
                return kind  # it can no longer matter: every token it covers has expired
            if kind == "session":
                self.sessions[fields["sid"]] = until
            elif kind == "user":
                before = int(fields["before"])
                known = self.users.get(fields["sub"])
                if known is None or known[0] < before:
                    self.users[fields["sub"]] = (before, until)
            elif kind == "everyone":
                before = int(fields["before"])
                if before > self.everyone_before:
                    self.everyone_before, self.everyone_forget_at = before, until
            elif kind == "key":
                self.withdrawn_kids[fields["kid"]] = until
            else:
                return None
        except (KeyError, ValueError):
            log.warning("skipping a malformed revocation event of type %r", kind)
            return None
        return kind

    def prune(self, *, now: float | None = None) -> None:
        """Forget the entries no still-valid token can match."""
        now = time.time() if now is None else now
        self.sessions = {sid: until for sid, until in self.sessions.items() if until > now}
        self.users = {sub: entry for sub, entry in self.users.items() if entry[1] > now}
        self.withdrawn_kids = {kid: until for kid, until in self.withdrawn_kids.items() if until > now}
        if self.everyone_before and self.everyone_forget_at <= now:
            self.everyone_before, self.everyone_forget_at = 0, 0.0


class RevocationFeed:
    """Follow the stream in one daemon thread per process; the same thread re-reads the JWKS.

    Started lazily by the first request (gunicorn forks workers, and a thread does not survive a
    fork), and again in a process whose pid changed.
    """

    BLOCK_MS = 1000
    RETRY_SECONDS = 0.5
    PAGE = 1000

    def __init__(
        self,
        url: str,
        stream: str,
        state: RevocationState,
        keys: JwksKeys | None = None,
        *,
        jwks_refresh_interval: float = 60.0,
        first_sync_wait: float = 2.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.stream = stream
        self.state = state
        self.keys = keys
        self.jwks_refresh_interval = jwks_refresh_interval
        self.first_sync_wait = first_sync_wait
        self.last_id = "0-0"
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._synced = threading.Event()  # the first replay is done (or was given up on)
        self._waited_for_sync = False
        self._stop = threading.Event()
        self._live = False
        self._lost_logged = False
        self._last_contact = time.monotonic()
        self._thread: threading.Thread | None = None

    # --- what the app sees ---------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the thread in this process if it is not running; on the first call, wait briefly
        for the replay so that a process that just started does not accept a revoked token."""
        if self._pid != os.getpid():
            with self._start_lock:
                if self._pid != os.getpid():
                    self._synced.clear()
                    self._waited_for_sync = False
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._run, name="revocation-feed", daemon=True)
                    self._thread.start()
                    self._pid = os.getpid()
        if not self._waited_for_sync:
            # Availability first: with Redis unreachable the process serves after this wait.
            self._synced.wait(self.first_sync_wait)
            self._waited_for_sync = True

    def status(self) -> dict[str, object]:
        if not self.url:
            return {"state": "off"}
        stale = 0 if self._live else round(time.monotonic() - self._last_contact)
        return {"state": "live" if self._live else "stale", "stale_seconds": stale}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        client = self._client() if self.url else None
        next_jwks = time.monotonic() + self.jwks_refresh_interval
        caught_up = False
        while not self._stop.is_set():
            if client is None:
                self._synced.set()
                self._stop.wait(max(0.0, next_jwks - time.monotonic()))
            else:
                try:
                    if not caught_up:
                        self._catch_up(client)
                        caught_up = True
                        self._mark_live()
                    self._read(client, block_ms=self.BLOCK_MS)
                    self._mark_live()
                except FEED_ERRORS as exc:
                    caught_up = False
                    self._mark_stale(exc)
                    self._stop.wait(self.RETRY_SECONDS)
                except Exception:
                    log.exception("revocation feed: unexpected error")
                    caught_up = False
                    self._stop.wait(self.RETRY_SECONDS)
            if time.monotonic() >= next_jwks:
                self._reload_keys()
                next_jwks = time.monotonic() + self.jwks_refresh_interval
                self.state.prune()

    def _client(self) -> RedisClient:
        # The socket timeout must outlast the blocking read, or every quiet second would be an error.
        return create_redis_client(self.url, socket_timeout=self.BLOCK_MS / 1000 + 2, decode_responses=True)

    def _catch_up(self, client: RedisClient) -> None:
        """Replay what was added since the last event seen (everything, on start): entries trimmed
        away meanwhile were older than any still-valid token."""
        while True:
            page: list[tuple[str, dict[str, str]]] = client.xrange(  # type: ignore[assignment]  # decoded replies
                self.stream, min=f"({self.last_id}", count=self.PAGE
            )
            self._apply(page)
            if len(page) < self.PAGE:
                break
        self._synced.set()

    def _read(self, client: RedisClient, *, block_ms: int) -> None:
        # With decode_responses the reply is [[stream, [(id, {field: value}), ...]]], all text.
        reply: list[tuple[str, list[tuple[str, dict[str, str]]]]] | None = client.xread(  # type: ignore[assignment]
            {self.stream: self.last_id}, count=self.PAGE, block=block_ms
        )
        for _stream, entries in reply or ():
            self._apply(entries)
            if self.metrics is not None:
                # An entry id starts with the milliseconds of its XADD on the Redis server.
                now_ms = time.time() * 1000
                for entry_id, _fields in entries:
                    self.metrics.revocation_applied((now_ms - int(entry_id.partition("-")[0])) / 1000)

    def _apply(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        key_withdrawn = False
        for entry_id, fields in entries:
            key_withdrawn |= self.state.apply(fields) == "key"
            self.last_id = entry_id
        if key_withdrawn:
            self._reload_keys()

    def _reload_keys(self) -> None:
        if self.keys is not None:
            self.keys.reload()

    def _mark_live(self) -> None:
        self._last_contact = time.monotonic()
        self._live = True
        if self.metrics is not None:
            self.metrics.revocation_feed_stale_for(0)
        if self._lost_logged:
            self._lost_logged = False
            log.warning("revocation feed is back", extra={"fields": {"event": "revocation_feed_back"}})
        self._synced.set()

    def _mark_stale(self, exc: BaseException) -> None:
        self._live = False
        if self.metrics is not None:
            self.metrics.revocation_feed_stale_for(time.monotonic() - self._last_contact)
        if not self._lost_logged:
            self._lost_logged = True
            log.warning(
                "revocation feed lost: %s", type(exc).__name__, extra={"fields": {"event": "revocation_feed_lost"}}
            )
        self._synced.set()  # nothing to wait for: serve (the line above says why it may be stale)


class RevocationPublisher:
    """Auth's side: append events, trimming what can no longer matter."""

    ATTEMPTS = 3

    def __init__(
        self,
        client: RedisClient,
        *,
        stream: str,
        window: float,
        clock: Callable[[], float] = time.time,
        writes: ReplicatedWrites | None = None,
    ) -> None:
        self.redis = client
        # A revocation lost in a failover would let the revoked tokens work again: replicas confirm it.
        self.writes = writes or ReplicatedWrites(client, min_replicas=None)
        self.stream = stream
        self.window = window
        self.clock = clock

    def session(self, session_id: str) -> None:
        self._publish({"type": "session", "sid": session_id})

    def user(self, user_id: str, before: int) -> None:
        self._publish({"type": "user", "sub": user_id, "before": str(before)}, until=before + self.window)

    def everyone(self, before: int) -> None:
        self._publish({"type": "everyone", "before": str(before)}, until=before + self.window)

    def key(self, kid: str) -> None:
        self._publish({"type": "key", "kid": kid})

    def _publish(self, fields: dict[str, str], *, until: float | None = None) -> None:
        now = self.clock()
        fields["until"] = str(math.ceil(until if until is not None else now + self.window))
        oldest = int((now - self.window) * 1000)
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                # Exact MINID trimming: the stream never holds an event older than the window.
                self.writes.write(
                    self.stream,
                    lambda client: client.xadd(self.stream, dict(fields), minid=max(oldest, 0), approximate=False),
                )
                return
            except FEED_ERRORS as exc:
                if attempt == self.ATTEMPTS:
                    log.error(
                        "revocation not published",
                        extra={
                            "fields": {
                                "event": "revocation_publish_failed",
                                "error": type(exc).__name__,
                                **{k: v for k, v in fields.items() if k != "until"},
                            }
                        },
                    )
                    raise RevocationNotPublished(fields["type"]) from exc
                time.sleep(0.05 * attempt)


class RevocationNotPublished(Exception):
    """The revocation happened but could not be announced to the resource services."""
