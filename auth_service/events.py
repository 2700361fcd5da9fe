"""Security events and the auth counters that go with them.

Each event is one JSON log line from the `security` logger with `event`, the user and session when
known, and the client's address and user agent when there is a request; never a token, cookie,
password or email. SECURITY.md lists the events; the counters are in shared/metrics.py.
"""

from __future__ import annotations

import logging

from flask import has_request_context, request

from shared.metrics import auth_logins, auth_refreshes, auth_sessions_revoked
from shared.request_log import configure_logging

log = logging.getLogger("security")

MAX_USER_AGENT = 256


def log_as_the_service_does() -> None:
    """For the commands: their events as JSON lines on stderr, like the service's."""
    configure_logging("auth_service")


def _event(name: str, level: int = logging.INFO, **fields: object) -> None:
    if has_request_context():
        fields.setdefault("client_address", request.remote_addr)
        fields.setdefault("user_agent", request.headers.get("User-Agent", "")[:MAX_USER_AGENT])
    log.log(level, name.replace("_", " "), extra={"fields": {"event": name, **fields}})


def login_succeeded(user_id: str, session_id: str) -> None:
    auth_logins.labels("success").inc()
    _event("login_succeeded", user_id=user_id, session_id=session_id)


def login_failed(user_id: str | None) -> None:
    """A wrong password (`user_id` of the account) or an unknown email (None)."""
    auth_logins.labels("invalid_credentials").inc()
    _event("login_failed", logging.WARNING, user_id=user_id)


def login_throttled(retry_after: int) -> None:
    auth_logins.labels("throttled").inc()
    _event("login_throttled", logging.WARNING, retry_after=retry_after)


def refreshed(*, grace: bool) -> None:
    # A counter only: a rotation is routine, one event each would drown the others.
    auth_refreshes.labels("grace" if grace else "rotated").inc()


def refresh_refused(reason: str) -> None:
    """A refresh with no cookie, or one that is malformed, forged, expired or ended."""
    auth_refreshes.labels("missing" if reason == "missing" else "unknown").inc()


def refresh_token_reused(user_id: str | None, session_id: str | None) -> None:
    """Theft: an older generation of a session's token came back; the session was ended."""
    auth_refreshes.labels("reused").inc()
    auth_sessions_revoked.labels("reuse").inc()
    _event("refresh_token_reuse", logging.WARNING, user_id=user_id, session_id=session_id)


def csrf_rejected(endpoint: str | None) -> None:
    if endpoint == "auth.refresh":
        auth_refreshes.labels("csrf_rejected").inc()
    _event("csrf_rejected", logging.WARNING, endpoint=endpoint)


def dpop_proof_refused(reason: str, session_id: str | None, endpoint: str | None) -> None:
    """A DPoP proof failed a check, or a bound session's cookie came without its key's proof (a
    stolen cookie?): the request was refused and changed nothing."""
    if endpoint == "auth.refresh":
        auth_refreshes.labels("invalid_dpop_proof").inc()
    _event("dpop_proof_refused", logging.WARNING, session_id=session_id, reason=reason, endpoint=endpoint)


def session_ended(reason: str, session_id: str, user_id: str | None = None) -> None:
    """`logout`, `revoked` (from the sessions list) or `cap` (the oldest, past the session cap)."""
    auth_sessions_revoked.labels(reason).inc()
    _event("session_revoked", reason=reason, user_id=user_id, session_id=session_id)


def logged_out_everywhere(user_id: str, sessions: int) -> None:
    auth_sessions_revoked.labels("logout_all").inc(sessions)
    _event("logout_all", user_id=user_id, sessions=sessions)


def everyone_logged_out(sessions: int) -> None:
    """`sessions revoke-all`, run by an operator."""
    auth_sessions_revoked.labels("admin").inc(sessions)
    _event("all_sessions_revoked", logging.WARNING, sessions=sessions)


def signing_key_rotated(new_kid: str, withdrawn_kids: list[str]) -> None:
    _event("signing_key_rotated", logging.WARNING, kid=new_kid, withdrawn=withdrawn_kids)
