"""The seed's story through the gateway only: log in, let the token expire, refresh silently, post."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from silent_auth_client import AuthError, AuthSession

PASSWORD = "correct horse battery"


def test_the_whole_story(stack):
    # The Python client (clients/python) is what the web client is in the browser: the access
    # token in memory, the refresh cookie in its jar (sent over http to the loopback gateway).
    browser = AuthSession(stack.url)
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    user_id = browser.signup(email, PASSWORD, "Ada")["id"]

    browser.login(email, PASSWORD)
    assert browser.token_response and browser.token_response["expires_in"] == 2
    assert browser.refresh_token

    profile = browser.get("/api/profiles/me")
    assert profile.status_code == 200
    assert profile.json()["user_id"] == user_id and profile.json()["name"] == "Ada"

    time.sleep(3)  # the access token expires
    # What a call sends and gets without the client's retry (its own Authorization header).
    expired = browser.get("/api/profiles/me", headers={"Authorization": f"Bearer {browser.access_token}"})
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert expired.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')

    old_refresh = browser.refresh_token
    retried = browser.get("/api/profiles/me")  # refreshes silently with the cookie, then retries once
    assert retried.status_code == 200
    assert browser.refreshes == 1
    assert browser.refresh_token != old_refresh, "the refresh token rotated"

    titles = [f"post {i}" for i in range(7)]
    for title in titles:
        created = browser.post("/api/boards", json={"title": title, "content": f"about {title}"})
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

    browser.logout()
    assert browser.refresh_token is None
    stale = AuthSession(stack.url)
    stale.cookies.set("refresh_token", old_refresh, domain="127.0.0.1", path="/api/auth", secure=True)
    with pytest.raises(AuthError) as refused:
        stale.refresh()
    assert refused.value.status == 401


def test_resource_services_verify_tokens_without_calling_auth(stack):
    browser = AuthSession(stack.url)
    email = f"quiet-{uuid.uuid4().hex[:8]}@example.com"
    browser.signup(email, PASSWORD, "Q")
    browser.login(email, PASSWORD)
    marker = f"independence-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        assert browser.get("/api/profiles/me", headers={"X-Request-ID": marker}).status_code == 200
    lines = stack.log_lines(marker, "gateway", "profile")
    assert any("profile.1" in line for line in lines)
    assert not any("auth.1" in line for line in lines)
