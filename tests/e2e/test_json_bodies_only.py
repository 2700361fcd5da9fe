"""Every operation of every service that takes a body takes JSON only (415 otherwise), through the gateway.

The operations come from each service's own /openapi.json, so a new endpoint is covered the day
it is added.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests

PASSWORD = "correct horse battery"
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", None]


def _operations_with_bodies(stack) -> list[tuple[str, str]]:
    operations = []
    for service in ("auth", "profile", "board"):
        document = requests.get(f"{stack.service_url(service)}/openapi.json", timeout=5).json()
        for path, methods in document["paths"].items():
            operations += [(method.upper(), path) for method, op in methods.items() if "requestBody" in op]
    return operations


@pytest.fixture(scope="module")
def bearer(stack) -> dict[str, str]:
    email = f"json-{uuid.uuid4().hex[:8]}@example.com"
    requests.post(f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "J"})
    token = requests.post(f"{stack.url}/api/auth/login", json={"email": email, "password": PASSWORD}).json()[
        "access_token"
    ]
    return {"Authorization": f"Bearer {token}"}


def test_every_operation_with_a_body_refuses_anything_but_json(stack, bearer):
    operations = _operations_with_bodies(stack)
    assert {
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/signup"),
        ("PATCH", "/api/profiles/me"),
        ("POST", "/api/boards"),
    } <= set(operations)
    for method, path in operations:
        url = stack.url + re.sub(r"\{[^}]+\}", "missing-id", path)
        for content_type in NOT_JSON:
            headers = {**bearer, **({"Content-Type": content_type} if content_type else {})}
            response = requests.request(
                method, url, data='{"title": "t", "content": "c", "name": "n"}', headers=headers, timeout=5
            )
            assert response.status_code == 415, (method, path, content_type, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "unsupported_media_type"
    posts = requests.get(f"{stack.url}/api/boards", timeout=5).json()["items"]
    assert posts == []  # nothing was created by a refused request


def _operations_without_bodies(stack) -> list[tuple[str, str]]:
    operations = []
    for service in ("auth", "profile", "board"):
        document = requests.get(f"{stack.service_url(service)}/openapi.json", timeout=5).json()
        for path, methods in document["paths"].items():
            operations += [(method.upper(), path) for method, op in methods.items() if "requestBody" not in op]
    return operations


def test_a_body_sent_to_an_operation_that_takes_none_must_be_json_too(stack, bearer):
    # docs/API.md: *a request with a body* must send application/json; the operations that read no
    # body (refresh, logout, logout-all, GETs, DELETEs) took any body and served the request.
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    requests.post(f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "N"})
    login = requests.post(f"{stack.url}/api/auth/login", json={"email": email, "password": PASSWORD})
    cookie = {"Cookie": f"refresh_token={login.cookies['refresh_token']}"}  # Secure: the jar sends none over http
    operations = _operations_without_bodies(stack)
    assert {("POST", "/api/auth/refresh"), ("POST", "/api/auth/logout"), ("GET", "/api/boards")} <= set(operations)
    for method, path in operations:
        url = stack.url + re.sub(r"\{[^}]+\}", "missing-id", path)
        for content_type in NOT_JSON:
            headers = {**bearer, **cookie, **({"Content-Type": content_type} if content_type else {})}
            response = requests.request(method, url, data="a=1", headers=headers, timeout=5)
            assert response.status_code == 415, (method, path, content_type, response.text)
            assert response.json()["code"] == "unsupported_media_type"
    # Nothing was done: the session the cookie names still refreshes. Without a body, or with a
    # JSON one, the same operations are served as before.
    assert requests.post(f"{stack.url}/api/auth/refresh", headers=cookie, timeout=5).status_code == 200
    assert requests.get(f"{stack.url}/api/boards", data="{}", headers={"Content-Type": "application/json"}).ok
