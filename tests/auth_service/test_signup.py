"""POST /api/auth/signup: every success and error row of docs/API.md."""

import pytest

from tests.auth_service.conftest import PASSWORD


def test_signup_returns_the_user(client):
    response = client.post(
        "/api/auth/signup", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada Lovelace"}
    )
    assert response.status_code == 201
    user = response.json["user"]
    assert set(user) == {"id", "email", "name"}
    assert user["email"] == "ada@example.com" and user["name"] == "Ada Lovelace"
    assert isinstance(user["id"], str) and user["id"]
    assert response.headers["Content-Type"] == "application/json"


def test_signup_ignores_unknown_fields_and_trims_the_name(client):
    response = client.post(
        "/api/auth/signup", json={"email": "bob@example.com", "password": PASSWORD, "name": "  Bob  ", "admin": True}
    )
    assert response.status_code == 201
    assert response.json["user"]["name"] == "Bob"


def test_email_taken_is_case_insensitive(client, auth):
    auth.signup(email="Grace@Example.com")
    response = client.post(
        "/api/auth/signup", json={"email": "grace@EXAMPLE.com", "password": PASSWORD, "name": "Grace"}
    )
    assert response.status_code == 409
    assert response.json["code"] == "email_taken"
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-address"),
        ("email", "@example.com"),
        ("email", ""),
        ("password", "short7!"),
        ("password", "x" * 129),
        ("name", ""),
        ("name", "   "),
        ("name", "n" * 51),
        ("name", None),
        ("name", "Ada\x00Lovelace"),
        ("name", "Ada\x85"),  # control characters at an end: refused, not trimmed
        ("email", "\x1cvalid@example.com"),
        ("email", "valid@example.com\x0b"),
        ("name", "two\nlines"),
        ("email", 42),
    ],
)
def test_invalid_fields_are_named(client, field, value):
    body = {"email": "valid@example.com", "password": PASSWORD, "name": "Valid", field: value}
    response = client.post("/api/auth/signup", json=body)
    assert response.status_code == 400
    problem = response.json
    assert problem["code"] == "validation_error"
    assert problem["status"] == 400
    assert [e["field"] for e in problem["errors"]] == [field]
    assert all(e["message"] for e in problem["errors"])


def test_boundary_lengths_are_accepted(client):
    response = client.post(
        "/api/auth/signup", json={"email": "edge@example.com", "password": "p" * 8, "name": "n" * 50}
    )
    assert response.status_code == 201
    response = client.post("/api/auth/signup", json={"email": "edge2@example.com", "password": "p" * 128, "name": "n"})
    assert response.status_code == 201


def test_missing_fields_are_all_reported(client):
    response = client.post("/api/auth/signup", json={})
    assert response.status_code == 400
    assert sorted(e["field"] for e in response.json["errors"]) == ["email", "name", "password"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"email": "a@b.c",'])
def test_malformed_json_is_invalid_json(client, body):
    response = client.post("/api/auth/signup", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["code"] == "invalid_json"
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_a_validation_error(client, body):
    response = client.post("/api/auth/signup", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"


def test_body_over_one_mebibyte_is_refused(client):
    response = client.post(
        "/api/auth/signup", data=b"{" + b" " * (1024 * 1024 + 10) + b"}", content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"


def test_wrong_method_and_unknown_path_are_problems(client):
    response = client.get("/api/auth/signup")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
    response = client.get("/api/auth/nothing-here")
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert response.headers["Content-Type"] == "application/problem+json"
