"""`AuthSession`: a `requests.Session` that holds a silent-auth session.

It logs in, keeps the access token in memory and the rotating `refresh_token` cookie in its jar,
sends `Authorization: Bearer <token>` on every call, and when a call answers 401 `token_expired`
(or `invalid_token`) it refreshes once and sends the call once more. A 401 `token_revoked` means
the session was ended elsewhere: the token is forgotten and no refresh is tried.

The refresh cookie is `Secure`. Browsers send Secure cookies to http://localhost (a loopback
origin is a secure context); requests' cookie jar does not, so the session's jar uses
`LoopbackSecureCookies`, which sends them to loopback hosts over http and nowhere else.
"""

from __future__ import annotations

import ipaddress
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import Request

import requests

RENEWABLE = frozenset({"token_expired", "invalid_token"})


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LoopbackSecureCookies(DefaultCookiePolicy):
    """Send `Secure` cookies over http to loopback hosts too, as browsers do; elsewhere only over https."""

    def return_ok_secure(self, cookie: Cookie, request: Request) -> bool:
        if cookie.secure and _is_loopback(urlsplit(request.get_full_url()).hostname):
            return True
        return bool(super().return_ok_secure(cookie, request))


class AuthError(Exception):
    """The server refused a login, signup, refresh or logout; carries its problem document."""

    def __init__(self, response: requests.Response) -> None:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        self.status: int = response.status_code
        self.code: str = str(problem.get("code") or "http_error")
        self.detail: str = str(problem.get("detail") or f"HTTP {response.status_code}")
        self.problem: dict[str, Any] = problem
        super().__init__(f"{self.status} {self.code}: {self.detail}")


class AuthSession(requests.Session):
    """A requests session signed in to silent-auth; relative URLs are resolved against `base_url`."""

    def __init__(self, base_url: str, *, auth_prefix: str = "/api/auth") -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") + "/"
        self.auth_prefix = auth_prefix.rstrip("/")
        self.access_token: str | None = None
        self.user: dict[str, Any] | None = None
        self.token_response: dict[str, Any] | None = None  # the last TokenResponse (expires_in, ...)
        self.refreshes = 0
        self.cookies.set_policy(LoopbackSecureCookies())

    # ---- the session -------------------------------------------------------------------------

    def signup(self, email: str, password: str, name: str) -> dict[str, Any]:
        """Create an account (it does not log in); returns the user."""
        response = super().request(
            "POST", self._url(f"{self.auth_prefix}/signup"), json={"email": email, "password": password, "name": name}
        )
        if response.status_code != 201:
            raise AuthError(response)
        user: dict[str, Any] = response.json()["user"]
        return user

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Log in; keeps the access token and the refresh cookie; returns the user."""
        response = super().request(
            "POST", self._url(f"{self.auth_prefix}/login"), json={"email": email, "password": password}
        )
        return self._take_tokens(response)

    def refresh(self) -> str:
        """Trade the refresh cookie for a new access token (the cookie rotates); returns the token."""
        response = super().request("POST", self._url(f"{self.auth_prefix}/refresh"))
        self.refreshes += 1
        if response.status_code == 401:
            self.access_token = None
        self._take_tokens(response)
        assert self.access_token is not None
        return self.access_token

    def logout(self) -> None:
        """End this session on the server and forget its tokens."""
        response = super().request("POST", self._url(f"{self.auth_prefix}/logout"))
        self.access_token = None
        self.user = None
        if response.status_code != 204:
            raise AuthError(response)

    @property
    def refresh_token(self) -> str | None:
        """The refresh cookie the jar holds (rotated on every refresh), or None."""
        for cookie in self.cookies:
            if cookie.name == "refresh_token" and cookie.value:
                return cookie.value
        return None

    # ---- calls -------------------------------------------------------------------------------

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Add the Cookie header by `LoopbackSecureCookies`: requests merges the session's jar into a
        fresh one with the default policy, so the jar's own policy alone would not be used."""
        prepared = super().prepare_request(request)
        if not _is_loopback(urlsplit(prepared.url or "").hostname):
            return prepared
        jar = requests.cookies.RequestsCookieJar(policy=LoopbackSecureCookies())
        jar.update(self.cookies)
        if isinstance(request.cookies, requests.cookies.RequestsCookieJar):
            jar.update(request.cookies)
        elif request.cookies:
            jar.update(requests.cookies.cookiejar_from_dict(dict(request.cookies)))
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(jar)
        return prepared

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with the access token; on 401 token_expired refresh once and send once more."""
        url = self._url(url.decode() if isinstance(url, bytes) else url)
        headers = dict(kwargs.pop("headers", None) or {})
        if any(name.lower() == "authorization" for name in headers) or self.access_token is None:
            return super().request(method, url, *args, headers=headers, **kwargs)
        token = self.access_token
        bearer = {**headers, "Authorization": f"Bearer {token}"}
        response = super().request(method, url, *args, headers=bearer, **kwargs)
        if response.status_code != 401:
            return response
        code = _problem_code(response)
        if code == "token_revoked":
            self.access_token = None  # ended elsewhere: a refresh cannot bring it back
            return response
        if code not in RENEWABLE:
            return response
        if self.access_token == token:  # not renewed meanwhile (another thread)
            try:
                self.refresh()
            except AuthError:
                return response
        assert self.access_token is not None
        return super().request(
            method, url, *args, headers={**headers, "Authorization": f"Bearer {self.access_token}"}, **kwargs
        )

    def _take_tokens(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise AuthError(response)
        body = response.json()
        self.token_response = body
        self.access_token = body["access_token"]
        self.user = body.get("user", self.user)
        return dict(self.user or {})

    def _url(self, url: str) -> str:
        return urljoin(self.base_url, url.lstrip("/")) if not urlsplit(url).scheme else url


def _problem_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return str(body["code"])
    return "invalid_token" if 'error="invalid_token"' in response.headers.get("WWW-Authenticate", "") else None
