"""HTTP routes of the auth service: parse with the schemas, call `Accounts`, shape the answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import dump_cookie

from auth_service import events
from auth_service.accounts import Accounts, InvalidCredentials, SessionNotFound, SignedIn, TooManyAttempts
from auth_service.config import AuthConfig
from auth_service.context import AuthContext
from auth_service.devices import DEVICE_COOKIE
from auth_service.dpop import with_proof
from auth_service.passwords import PasswordHashingBusy
from auth_service.schemas import (
    JsonWebKeySet,
    LoginRequest,
    SessionList,
    SessionPublic,
    SignupRequest,
    TokenResponse,
    UserEnvelope,
    UserPublic,
)
from auth_service.sessions import InvalidRefreshToken
from auth_service.users import EmailTaken
from shared.access_tokens import Caller, require_caller
from shared.openapi import ViewResult, operation
from shared.problems import ErrorTable, Problem, ProblemFor
from shared.revocations import RevocationNotPublished

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/api/auth"
DEVICE_COOKIE_PATH = "/api/auth/login"  # sent with login attempts and nowhere else

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
well_known = Blueprint("well_known", __name__)


# Clears the refresh cookie with exactly the attributes it was set with.
_CLEAR_REFRESH_COOKIE = dump_cookie(
    REFRESH_COOKIE, "", max_age=0, expires=0, path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict"
)


def _retry_after(exc: Exception) -> dict[str, str]:
    assert isinstance(exc, TooManyAttempts | PasswordHashingBusy)
    return {"Retry-After": str(exc.retry_after)}


ERRORS: ErrorTable = {
    InvalidCredentials: ProblemFor(401, "invalid_credentials", "The email or password is wrong.", title="Unauthorized"),
    TooManyAttempts: ProblemFor(
        429,
        "too_many_attempts",
        "Too many failed logins; try again later.",
        title="Too many attempts",
        headers=_retry_after,
    ),
    # Admission control shed the request before its password was hashed (auth_service/passwords.py).
    PasswordHashingBusy: ProblemFor(
        503,
        "password_hashing_busy",
        "Too many logins are being checked right now; try again shortly.",
        title="Service unavailable",
        headers=_retry_after,
    ),
    InvalidRefreshToken: ProblemFor(
        401,
        "invalid_refresh_token",
        "The session has ended; log in again.",
        title="Unauthorized",
        headers=lambda _: {"Set-Cookie": _CLEAR_REFRESH_COOKIE},
    ),
    EmailTaken: ProblemFor(409, "email_taken", "An account with this email already exists.", title="Conflict"),
    SessionNotFound: ProblemFor(404, "not_found", "No such session.", title="Not found"),
    # The session ended but the resource services were not told: the caller retries (idempotent).
    RevocationNotPublished: ProblemFor(
        503,
        "unavailable",
        "The session ended but the revocation could not be announced yet; try again shortly.",
        title="Service unavailable",
        headers=lambda _: {"Retry-After": "1"},
    ),
}


def _accounts() -> Accounts:
    return AuthContext.of().accounts


def _config() -> AuthConfig:
    return AuthContext.of().config


def _token_response(signed_in: SignedIn, status: int = 200) -> Response:
    config = _config()
    body = TokenResponse(
        access_token=signed_in.access_token,
        token_type=signed_in.token_type,
        expires_in=config.access_token_ttl,
        user=UserPublic(id=signed_in.user.id, email=signed_in.user.email, name=signed_in.user.name),
    )
    # pydantic writes the JSON itself (compact), without a dict and Flask's encoder in between.
    response = Response(body.model_dump_json(), status, mimetype="application/json")
    _set_private_cookie(response, REFRESH_COOKIE, signed_in.refresh_token, config.refresh_token_ttl, COOKIE_PATH)
    if signed_in.device_cookie:
        _set_private_cookie(
            response, DEVICE_COOKIE, signed_in.device_cookie, config.login_device_cookie_ttl, DEVICE_COOKIE_PATH
        )
    return response


def private_cookie(name: str, value: str, max_age: int, path: str) -> str:
    """The Set-Cookie header of a cookie page scripts cannot read, sent over HTTPS only, and never
    on cross-site requests.

    Max-Age only, as docs/API.md says: no Expires date formatted per response (every browser that
    honours SameSite honours Max-Age). A value werkzeug would not quote (our tokens and device
    cookies) goes in front of the attributes werkzeug rendered once; any other value is rendered whole."""
    if _UNQUOTED_COOKIE_VALUE.fullmatch(value):
        return f"{name}={value}{_cookie_attributes(name, max_age, path)}"
    return dump_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="Strict", sync_expires=False
    )


# Characters werkzeug's dump_cookie leaves unquoted (a subset of its own list): the refresh token's
# alphabet (hex, digits, base64url and dots) and the device cookie's.
_UNQUOTED_COOKIE_VALUE = re.compile(r"[A-Za-z0-9._-]*")


@lru_cache(maxsize=16)
def _cookie_attributes(name: str, max_age: int, path: str) -> str:
    """What follows `name=value` in a private cookie's header: the same for every response."""
    header = dump_cookie(
        name, "", max_age=max_age, path=path, secure=True, httponly=True, samesite="Strict", sync_expires=False
    )
    return header[len(name) + 1 :]


def _set_private_cookie(response: Response, name: str, value: str, max_age: int, path: str) -> None:
    response.headers.add("Set-Cookie", private_cookie(name, value, max_age, path))


def _clear_cookie(response: Response) -> Response:
    response.headers.add("Set-Cookie", _CLEAR_REFRESH_COOKIE)
    return response


@bp.after_app_request
def _no_store(response: Response) -> Response:
    # Every auth answer is about one person (tokens, emails, sessions) except the public keys, which
    # set their own. App-wide, so that the 404s and 405s routing gives before any view are covered too.
    if request.path.startswith(bp.url_prefix or "/api/auth"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# The endpoints that ask for DPoP nonces (DPOP_NONCE=true).
_NONCE_ENDPOINTS = frozenset({"auth.login", "auth.refresh", "auth.logout"})


@bp.after_app_request
def _current_dpop_nonce(response: Response) -> Response:
    # Every answer of login, refresh and logout carries the current nonce (docs/API.md): refusals
    # too (a wrong password, a CSRF or 415 refusal), so a client can take it from any of them.
    if request.endpoint not in _NONCE_ENDPOINTS:
        return response  # before the context lookup: this runs after every request of the app
    nonces = AuthContext.of().dpop.verifier.nonces
    if nonces is not None:
        response.headers.setdefault("DPoP-Nonce", nonces.current())
    return response


def same_origin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """CSRF defence: refuse a foreign Origin or a cross-site fetch before anything is read or done.

    For the cookie endpoints and for login and signup, where a cross-site form could otherwise log
    the victim's browser into the attacker's account.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in _config().origins:
            events.csrf_rejected(request.endpoint)
            raise Problem(
                403, "csrf_rejected", "The request comes from an origin that is not allowed.", title="Forbidden"
            )
        if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            events.csrf_rejected(request.endpoint)
            raise Problem(403, "csrf_rejected", "Cross-site requests are not allowed.", title="Forbidden")
        return view(*args, **kwargs)

    return wrapper


def _session_is_live(caller: Caller) -> bool:
    return _accounts().session_is_active(caller.id, caller.session_id)


# Like `require_caller`, and the token's session must not have been revoked.
require_live_session = require_caller(still_active=_session_is_live)


@bp.post("/signup")
@same_origin_only
@operation("Create an account", body=SignupRequest, responses={201: UserEnvelope}, errors=(403, 409))
def signup(body: SignupRequest) -> ViewResult:
    user = _accounts().signup(email=body.email, password=body.password, name=body.name)
    return UserEnvelope(user=UserPublic(id=user.id, email=user.email, name=user.name)), 201


@bp.post("/login")
@same_origin_only
@with_proof(login=True)
@operation(
    "Log in; sets the refresh_token and login_device cookies",
    body=LoginRequest,
    responses={200: TokenResponse},
    errors=(401, 403, 429),
)
def login(body: LoginRequest, proof_key: str) -> ViewResult:
    signed_in = _accounts().login(
        email=body.email,
        password=body.password,
        address=request.remote_addr or "unknown",
        user_agent=request.headers.get("User-Agent", ""),
        device_cookie=request.cookies.get(DEVICE_COOKIE),
        proof_key=proof_key,
    )
    return _token_response(signed_in)


@bp.post("/refresh")
@same_origin_only
@with_proof()
@operation(
    "Exchange the refresh_token cookie for a new access token and cookie",
    responses={200: TokenResponse},
    errors=(401, 403),
)
def refresh(proof_key: str) -> ViewResult:
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        events.refresh_refused("missing")
        raise InvalidRefreshToken("missing")
    return _token_response(_accounts().refresh(token, proof_key))


@bp.post("/logout")
@same_origin_only
@with_proof()
@operation("End this session and clear the cookie", responses={204: None}, errors=(403,))
def logout(proof_key: str) -> ViewResult:
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        _accounts().logout(token, proof_key)
    return _clear_cookie(Response(status=204))


@bp.post("/logout-all")
@require_live_session
@operation("End every session of the caller", responses={204: None})
def logout_all(caller: Caller) -> ViewResult:
    _accounts().logout_all(caller.id)
    return _clear_cookie(Response(status=204))


@bp.get("/sessions")
@require_live_session
@operation("List the caller's sessions", responses={200: SessionList})
def list_sessions(caller: Caller) -> ViewResult:
    sessions = _accounts().list_sessions(caller.id)
    return SessionList(
        sessions=[
            SessionPublic(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                user_agent=s.user_agent,
                current=s.id == caller.session_id,
            )
            for s in sessions
        ]
    )


@bp.delete("/sessions/<session_id>")
@require_live_session
@operation("End one of the caller's sessions", responses={204: None})
def revoke_session(session_id: str, caller: Caller) -> ViewResult:
    _accounts().revoke_session(caller.id, session_id)
    return None


def _jwks() -> Response:
    response = jsonify(AuthContext.of().issuer.jwks)
    # Short enough that a newly introduced key reaches verifiers quickly.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jwks.json")
@operation("The public keys that verify access tokens", responses={200: JsonWebKeySet})
def jwks() -> ViewResult:
    return _jwks()


@well_known.get("/.well-known/jwks.json")
@operation("The public keys that verify access tokens", responses={200: JsonWebKeySet})
def well_known_jwks() -> ViewResult:
    return _jwks()
