"""DPoP at auth's cookie endpoints (RFC 9449): login binds a session to the proof's key, refresh and
logout of a bound session need a proof of that key.

The proof itself is checked by shared/dpop.py; here live what only auth has: the `jti`s seen by
every replica (Redis `SET NX PX`, one key per proof), the server nonces (an HMAC of the time
window under a key derived from the refresh key, so every replica makes and accepts the same ones
without talking to each other), and the security log. The comparison of the proof's key with the
session's is made inside the session scripts (auth_service/sessions.py), atomically with the
rotation or the logout, so a refused request changes nothing.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import request

from auth_service import events
from auth_service.context import AuthContext
from auth_service.sessions import SessionKeyMismatch
from shared.dpop import DpopError, ProofVerifier, invalid_proof, proof_header
from shared.redis_client import RedisClient

_SESSION_ID = re.compile(r"([0-9a-f]{32})\.")


class RedisReplayCache:
    """Proof ids seen by any replica: one key per proof, written only if new, expiring with the window."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def first_use(self, key: str, ttl_ms: int) -> bool:
        # One key, so one slot on a Cluster. Not confirmed by the replicas (no WAIT): a failover may
        # forget the ids of the last moment, which then stay usable until their window ends.
        return bool(self.client.set(f"{self.prefix}dpop:{key}", b"1", nx=True, px=ttl_ms))


class ProofNonces:
    """Server nonces (RFC 9449 §8): the current and the previous time window's are accepted."""

    def __init__(self, refresh_key: bytes, window: int) -> None:
        self._key = hmac.digest(refresh_key, b"dpop-nonce", "sha256")
        self.window = window

    def _of(self, index: int) -> str:
        mac = hmac.digest(self._key, str(index).encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def current(self) -> str:
        return self._of(int(time.time()) // self.window)

    def valid(self, nonce: str) -> bool:
        index = int(time.time()) // self.window
        return any(hmac.compare_digest(nonce, self._of(i)) for i in (index, index - 1))


class CookieProofs:
    """The proof checks of the cookie endpoints, and whether a login must bring one."""

    def __init__(self, verifier: ProofVerifier, *, require_bound: bool) -> None:
        self.verifier = verifier
        self.require_bound = require_bound


def with_proof(*, login: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the request's DPoP proof, if any, and pass its key thumbprint as `proof_key` ('' without
    one). A proof that fails a check is refused even where none is needed; a login without one is
    refused when REQUIRE_BOUND_SESSIONS is set."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            proofs = AuthContext.of().dpop
            cookie = _SESSION_ID.match(request.cookies.get("refresh_token", ""))
            session_id = cookie[1] if cookie else None
            try:
                proof = proof_header(request.headers)
                proof_key = ""
                if proof is not None:
                    proof_key = proofs.verifier.verify(proof, method=request.method, path=request.path).jkt
                elif login and proofs.require_bound:
                    raise invalid_proof("missing", "A DPoP proof is required to log in")
                response = view(*args, proof_key=proof_key, **kwargs)
            except DpopError as exc:
                if exc.reason != "nonce":  # asking for a nonce is the protocol, not an attack
                    events.dpop_proof_refused(exc.reason, session_id, request.endpoint)
                raise
            except SessionKeyMismatch as exc:
                events.dpop_proof_refused(exc.reason, exc.session_id, request.endpoint)
                raise invalid_proof(exc.reason, "The session is bound to a key: send a DPoP proof of it") from None
            return response

        return wrapper

    return decorate
