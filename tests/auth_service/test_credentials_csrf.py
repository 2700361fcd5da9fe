"""Login CSRF: a cross-site page must not log the victim's browser into the attacker's account.

A cross-site HTML form can POST `text/plain` (or form encodings) without a CORS preflight, with a
field name that makes the body look like JSON. So login and signup refuse cross-site requests like
refresh and logout do (403 `csrf_rejected`), and every JSON endpoint refuses a body that is not
`application/json` (415 `unsupported_media_type`). Nothing is created or set by a refused request.
"""

from __future__ import annotations

import json

import pytest

from tests.auth_service.conftest import PASSWORD

ATTACKER = {"email": "attacker@example.com", "password": PASSWORD}
# What `<form enctype=text/plain>` sends for <input name='{"email":..., "x":"' value='"}'>
FORM_BODY = json.dumps({**ATTACKER, "x": "="})[:-3] + '="}'

CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://localhost:8080.evil.example"},
    {"Origin": "http://localhost:8081"},
    {"Origin": "https://localhost:8080"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost:8080", "Sec-Fetch-Site": "cross-site"},
]


def _set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_the_form_body_is_json_that_logs_in(client, auth):
    """The attack's premise: the text/plain body parses as a valid login."""
    auth.signup(email=ATTACKER["email"])
    assert json.loads(FORM_BODY)["email"] == ATTACKER["email"]


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_cross_site_login_is_refused_and_sets_nothing(client, auth, headers, content_type):
    auth.signup(email=ATTACKER["email"])
    response = client.post("/api/auth/login", data=FORM_BODY, content_type=content_type, headers=headers)
    assert response.status_code == 403
    assert response.json["code"] == "csrf_rejected"
    assert _set_cookies(response) == []


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_signup_is_refused_and_creates_nothing(client, headers):
    body = {"email": "new@example.com", "password": PASSWORD, "name": "New"}
    response = client.post("/api/auth/signup", json=body, headers=headers)
    assert response.status_code == 403
    assert response.json["code"] == "csrf_rejected"
    assert client.post("/api/auth/signup", json=body).status_code == 201  # the email was still free


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
        None,
    ],
)
def test_login_and_signup_need_a_json_body(client, auth, content_type):
    auth.signup(email=ATTACKER["email"])
    login = client.post("/api/auth/login", data=FORM_BODY, content_type=content_type)
    assert login.status_code == 415
    assert login.headers["Content-Type"] == "application/problem+json"
    assert login.json["code"] == "unsupported_media_type"
    assert _set_cookies(login) == []
    body = json.dumps({"email": "other@example.com", "password": PASSWORD, "name": "Other"})
    signup = client.post("/api/auth/signup", data=body, content_type=content_type)
    assert signup.status_code == 415
    assert client.post("/api/auth/signup", data=body, content_type="application/json").status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost:8080", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://127.0.0.1:8080"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_same_origin_and_non_browser_logins_are_served(client, auth, headers):
    auth.signup(email=ATTACKER["email"])
    response = client.post("/api/auth/login", json=ATTACKER, headers=headers)
    assert response.status_code == 200
    assert (
        client.post(
            "/api/auth/login", data=FORM_BODY, content_type="application/json; charset=utf-8", headers=headers
        ).status_code
        == 200
    )


def test_openapi_documents_403_and_415_on_the_credential_endpoints(client):
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/api/auth/login", "/api/auth/signup"):
        assert {"403", "415"} <= set(paths[path]["post"]["responses"])
