"""The seed's story through the gateway only: log in, let the token expire, refresh silently, post."""

from __future__ import annotations

import time
import uuid

import requests

PASSWORD = "correct horse battery"


class Browser:
    """What the web client does: access token in memory, refresh token in the cookie.

    requests keeps Secure cookies off plain http (browsers exempt localhost), so the refresh
    cookie travels by hand, exactly as the server set it.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.access_token: str | None = None
        self.refresh_token: str | None = None

    def _remember(self, response: requests.Response) -> None:
        set_cookie = response.headers.get("Set-Cookie", "")
        if set_cookie.startswith("refresh_token="):
            self.refresh_token = set_cookie.split(";", 1)[0].split("=", 1)[1] or None  # '' clears it
        if response.ok and response.headers.get("Content-Type") == "application/json":
            self.access_token = response.json().get("access_token", self.access_token)

    def post_credentials(self, path: str, body: dict) -> requests.Response:
        response = self.http.post(f"{self.base}{path}", json=body)
        self._remember(response)
        return response

    def cookie_call(self, path: str) -> requests.Response:
        headers = {"Cookie": f"refresh_token={self.refresh_token}"} if self.refresh_token else {}
        response = self.http.post(f"{self.base}{path}", headers=headers)
        self._remember(response)
        return response

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)


def test_the_whole_story(stack):
    browser = Browser(stack.url)
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    signup = browser.post_credentials("/api/auth/signup", {"email": email, "password": PASSWORD, "name": "Ada"})
    assert signup.status_code == 201
    user_id = signup.json()["user"]["id"]

    login = browser.post_credentials("/api/auth/login", {"email": email, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["expires_in"] == 2
    assert browser.refresh_token

    profile = browser.api("GET", "/api/profiles/me")
    assert profile.status_code == 200
    assert profile.json()["user_id"] == user_id and profile.json()["name"] == "Ada"

    time.sleep(3)  # the access token expires
    expired = browser.api("GET", "/api/profiles/me")
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert expired.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')

    old_refresh = browser.refresh_token
    refreshed = browser.cookie_call("/api/auth/refresh")
    assert refreshed.status_code == 200
    assert browser.refresh_token != old_refresh
    retried = browser.api("GET", "/api/profiles/me")
    assert retried.status_code == 200

    titles = [f"post {i}" for i in range(7)]
    for title in titles:
        created = browser.api("POST", "/api/boards", json={"title": title, "content": f"about {title}"})
        assert created.status_code == 201, created.text
        assert created.headers["Location"] == f"/api/boards/{created.json()['id']}"
        assert created.json()["author"] == {"id": user_id, "name": "Ada"}

    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{stack.url}/api/boards", params=params).json()
        seen += [item["title"] for item in page["items"] if item["author"]["id"] == user_id]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(titles))  # newest first, each exactly once

    assert browser.cookie_call("/api/auth/logout").status_code == 204
    assert browser.refresh_token is None
    browser.refresh_token = old_refresh
    assert browser.cookie_call("/api/auth/refresh").status_code == 401


def test_resource_services_verify_tokens_without_calling_auth(stack):
    browser = Browser(stack.url)
    email = f"quiet-{uuid.uuid4().hex[:8]}@example.com"
    browser.post_credentials("/api/auth/signup", {"email": email, "password": PASSWORD, "name": "Q"})
    browser.post_credentials("/api/auth/login", {"email": email, "password": PASSWORD})
    marker = f"independence-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        assert browser.api("GET", "/api/profiles/me", headers={"X-Request-ID": marker}).status_code == 200
    lines = stack.log_lines(marker, "gateway", "profile")
    assert any("profile.1" in line for line in lines)
    assert not any("auth.1" in line for line in lines)
