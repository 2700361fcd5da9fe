"""The auth domain: sign up, log in, renew and end sessions. Routes call one function each."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from auth_service import events
from auth_service.devices import LoginDevices
from auth_service.passwords import Passwords
from auth_service.sessions import InvalidRefreshToken, SessionInfo, SessionStore, SessionUser
from auth_service.throttle import LoginThrottle
from auth_service.tokens import TokenIssuer
from auth_service.users import User, UserStore, email_key
from shared.revocations import RevocationPublisher, cut_off_now


class InvalidCredentials(Exception):
    """Unknown email or wrong password: deliberately indistinguishable."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class SessionNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What a login or refresh hands back: tokens for the client and who they belong to."""

    access_token: str
    refresh_token: str
    user: SessionUser
    device_cookie: str | None = None  # set by a login: the browser's renewed device cookie
    token_type: Literal["Bearer", "DPoP"] = "Bearer"  # noqa: S105 - DPoP: the access token is bound (cnf.jkt)


class Accounts:
    def __init__(
        self,
        users: UserStore,
        passwords: Passwords,
        sessions: SessionStore,
        throttle: LoginThrottle,
        issuer: TokenIssuer,
        devices: LoginDevices,
        revocations: RevocationPublisher,
        bind_access_tokens: bool = False,
    ) -> None:
        # ACCESS_TOKEN_BINDING=dpop: a bound session's access tokens carry its key (cnf.jkt).
        self.bind_access_tokens = bind_access_tokens
        # Every revocation below is announced after it succeeded, so that the access tokens of the
        # ended sessions stop working at the resource services too (shared/revocations.py).
        self.revocations = revocations
        self.users = users
        self.devices = devices
        self.passwords = passwords
        self.sessions = sessions
        self.throttle = throttle
        self.issuer = issuer

    def signup(self, *, email: str, password: str, name: str) -> User:
        with self.passwords.admitted("signup"):
            password_hash = self.passwords.hash(password)
        return self.users.add(email=email, name=name, password_hash=password_hash)

    def login(
        self,
        *,
        email: str,
        password: str,
        address: str,
        user_agent: str,
        device_cookie: str | None = None,
        proof_key: str = "",
    ) -> SignedIn:
        """Log in; with `proof_key` (a checked DPoP proof's key thumbprint) the session is bound to it."""
        key = email_key(email)
        device = self.devices.recognise(key, device_cookie)
        # Admission first: a shed login costs no Redis or database call, is not counted as an attempt,
        # and is shed alike for every account, known or not.
        with self.passwords.admitted("login"):
            retry_after = self.throttle.begin_attempt(key, address, device)
            if retry_after is not None:
                events.login_throttled(retry_after)
                raise TooManyAttempts(retry_after)
            user = self.users.find_by_email(email)
            # The dummy hash inside verify() makes an unknown email cost what a wrong password costs.
            if not self.passwords.verify(user.password_hash if user else None, password) or user is None:
                events.login_failed(user.id if user else None)
                raise InvalidCredentials()
            self.throttle.succeeded(key, address, device)
            if self.passwords.needs_rehash(user.password_hash):
                self.users.set_password_hash(user.id, self.passwords.hash(password))
        session_user = SessionUser(user.id, user.email, user.name)
        session_id, refresh_token, ended = self.sessions.create(session_user, user_agent, jkt=proof_key)
        for ended_session in ended:  # past the session cap
            self.revocations.session(ended_session)
            events.session_ended("cap", ended_session, user.id)
        events.login_succeeded(user.id, session_id)
        signed_in = self._signed_in(session_user, session_id, refresh_token, proof_key)
        return replace(signed_in, device_cookie=self.devices.issue(key, device_cookie))

    def refresh(self, refresh_token: str, proof_key: str = "") -> SignedIn:
        try:
            renewal = self.sessions.rotate(refresh_token, jkt=proof_key)
        except InvalidRefreshToken as exc:
            if exc.reason == "reused":
                events.refresh_token_reused(exc.user_id, exc.session_id)
                if exc.session_id is not None:  # always set for a reuse
                    self.revocations.session(exc.session_id)
            else:
                events.refresh_refused(exc.reason)
            raise
        events.refreshed(grace=renewal.grace)
        return self._signed_in(renewal.user, renewal.session_id, renewal.refresh_token, renewal.jkt)

    def logout(self, refresh_token: str, proof_key: str = "") -> None:
        session_id = self.sessions.revoke_by_token(refresh_token, jkt=proof_key)
        if session_id is not None:
            self.revocations.session(session_id)
            events.session_ended("logout", session_id)

    def logout_all(self, user_id: str) -> None:
        ended = self.sessions.revoke_all(user_id)
        self.revocations.user(user_id, before=cut_off_now())
        events.logged_out_everywhere(user_id, ended)

    def list_sessions(self, user_id: str) -> list[SessionInfo]:
        return self.sessions.list(user_id)

    def revoke_session(self, user_id: str, session_id: str) -> None:
        if not self.sessions.revoke(user_id, session_id):
            raise SessionNotFound(session_id)
        self.revocations.session(session_id)
        events.session_ended("revoked", session_id, user_id)

    def session_is_active(self, user_id: str, session_id: str) -> bool:
        return self.sessions.is_active(user_id, session_id)

    def _signed_in(self, user: SessionUser, session_id: str, refresh_token: str, jkt: str = "") -> SignedIn:
        bound_to = jkt if self.bind_access_tokens else ""
        access_token = self.issuer.issue(user_id=user.id, name=user.name, session_id=session_id, jkt=bound_to)
        return SignedIn(access_token, refresh_token, user, token_type="DPoP" if bound_to else "Bearer")
