"""Every row and error of docs/API.md's board table, through the HTTP interface, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from board_service import create_app
from board_service.config import BoardConfig
from board_service.context import BoardContext
from tests.board_service.conftest import Author, assert_problem

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PROTECTED = [("post", "/api/boards"), ("patch", "/api/boards/{id}"), ("delete", "/api/boards/{id}")]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


# --- create ------------------------------------------------------------------------------------


def test_create_returns_the_post_with_its_location_and_the_author_from_the_token(client, alice):
    response = client.post(
        "/api/boards",
        headers=alice.headers,
        json={"title": "  Hello  ", "content": "  First post\n", "extra": "ignored"},
    )

    assert response.status_code == 201
    post = response.json
    assert response.headers["Location"] == f"/api/boards/{post['id']}"
    assert list(post) == ["id", "title", "content", "author", "created_at", "updated_at"]
    assert post["title"] == "Hello"  # titles are stripped
    assert post["content"] == "  First post\n"  # content keeps its whitespace
    assert post["author"] == {"id": alice.id, "name": "Alice"}
    assert TIMESTAMP.fullmatch(post["created_at"]) and post["updated_at"] == post["created_at"]
    assert isinstance(post["id"], str) and post["id"]


def test_create_accepts_the_longest_title_and_content(client, alice):
    response = client.post("/api/boards", headers=alice.headers, json={"title": "t" * 200, "content": "c" * 20000})

    assert response.status_code == 201
    assert len(response.json["title"]) == 200 and len(response.json["content"]) == 20000


def test_create_counts_characters_not_bytes(client, alice):
    response = client.post("/api/boards", headers=alice.headers, json={"title": "가" * 200, "content": "é"})

    assert response.status_code == 201
    assert client.get(response.headers["Location"]).json["title"] == "가" * 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "text"}, "title"),
        ({"title": "Title"}, "content"),
        ({"title": "", "content": "text"}, "title"),
        ({"title": "   ", "content": "text"}, "title"),
        ({"title": "t" * 201, "content": "text"}, "title"),
        ({"title": 5, "content": "text"}, "title"),
        ({"title": None, "content": "text"}, "title"),
        ({"title": "nul\x00", "content": "text"}, "title"),
        ({"title": "Title\x85", "content": "text"}, "title"),  # at an end: refused, not trimmed
        ({"title": "Title", "content": ""}, "content"),
        ({"title": "Title", "content": "c" * 20001}, "content"),
        ({"title": "Title", "content": ["text"]}, "content"),
        ({"title": "Title", "content": "nul\x00"}, "content"),
    ],
)
def test_create_rejects_invalid_fields(client, alice, body, field):
    response = client.post("/api/boards", headers=alice.headers, json=body)

    problem = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert client.get("/api/boards").json["items"] == []


def test_create_rejects_a_body_that_is_not_an_object(client, alice):
    response = client.post("/api/boards", headers=alice.headers, json=["Title", "text"])

    assert_problem(response, 400, "validation_error")


# --- read --------------------------------------------------------------------------------------


def test_read_returns_the_post(client, alice):
    post = alice.publish(title="Hello", content="World")

    response = client.get(f"/api/boards/{post['id']}")

    assert response.status_code == 200
    assert response.json == post


@pytest.mark.parametrize("post_id", ["0" * 32, "no-such-post", "x" * 1000, "%00", "%E2%98%83"])
def test_read_of_an_unknown_post_is_not_found(client, alice, post_id):
    alice.publish()

    assert_problem(client.get(f"/api/boards/{post_id}"), 404, "not_found")


# --- list --------------------------------------------------------------------------------------


def test_list_is_newest_first(client, alice, bob):
    first, second, third = alice.publish(), bob.publish(), alice.publish()

    response = client.get("/api/boards")

    assert response.status_code == 200
    assert response.json == {"items": [third, second, first], "next_cursor": None}


def test_list_of_an_empty_board(client):
    assert client.get("/api/boards").json == {"items": [], "next_cursor": None}


def test_list_defaults_to_twenty_posts(client, alice):
    for _ in range(21):
        alice.publish()

    page = client.get("/api/boards").json

    assert len(page["items"]) == 20 and page["next_cursor"]


@pytest.mark.parametrize("limit", ["1", "100"])
def test_list_accepts_limits_from_1_to_100(client, alice, limit):
    alice.publish(), alice.publish()

    response = client.get(f"/api/boards?limit={limit}")

    assert response.status_code == 200
    assert len(response.json["items"]) == min(int(limit), 2)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "2.5"])
def test_list_rejects_a_limit_outside_1_to_100(client, limit):
    problem = assert_problem(client.get(f"/api/boards?limit={limit}"), 400, "validation_error")

    assert [error["field"] for error in problem["errors"]] == ["limit"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        b64("not json"),
        b64('{"created_at": "2026-11-27T08:00:00.000000Z", "id": "0123456789abcdef0123456789abcdef"}'),
        b64('["2026-11-27T08:00:00.000000Z"]'),
        b64("[1, 2]"),
        b64('["2026-11-27T08:00:00.000000Z", "not-a-post-id"]'),
        b64('["2026-11-27 08:00:00", "0123456789abcdef0123456789abcdef"]'),
        b64('["2026-11-27T08:00:00.000000+01:00", "0123456789abcdef0123456789abcdef"]'),
        b64('["2026-11-27T08:00:00.000000Z", "0123456789abcdef0123456789abcdef", 3]'),
        b64("[" * 140),
        "A" * 5000,
    ],
)
def test_list_rejects_a_bad_cursor(client, cursor):
    problem = assert_problem(client.get("/api/boards", query_string={"cursor": cursor}), 400, "validation_error")

    assert [error["field"] for error in problem["errors"]] == ["cursor"]


def test_list_rejects_a_tampered_cursor(client, alice):
    for _ in range(3):
        alice.publish()
    cursor = client.get("/api/boards?limit=1").json["next_cursor"]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    tampered = [
        cursor[:-1],  # truncated
        cursor + "=" * (-len(cursor) % 4 or 4),  # padded
        cursor[:10] + "*" + cursor[11:],  # a character outside the alphabet
        cursor + "AAAA",  # trailing bytes
        b64(decoded.upper()),  # an id we never issue
        b64(decoded.replace(",", ", ")),  # not our encoding of the position
    ]
    assert client.get("/api/boards", query_string={"cursor": cursor}).status_code == 200

    for bad in tampered:
        response = client.get("/api/boards", query_string={"cursor": bad})
        assert_problem(response, 400, "validation_error")


# --- update ------------------------------------------------------------------------------------


def test_author_changes_the_title(client, alice):
    post = alice.publish(title="Old", content="Body")
    time.sleep(1.01)  # timestamps are shown to the second

    response = client.patch(f"/api/boards/{post['id']}", headers=alice.headers, json={"title": " New "})

    assert response.status_code == 200
    assert response.json["title"] == "New" and response.json["content"] == "Body"
    assert response.json["created_at"] == post["created_at"]
    assert response.json["updated_at"] > post["updated_at"]
    assert client.get(f"/api/boards/{post['id']}").json == response.json


def test_author_changes_the_content_and_both_fields(client, alice):
    post = alice.publish(title="Title", content="Old")
    url = f"/api/boards/{post['id']}"

    assert client.patch(url, headers=alice.headers, json={"content": "New"}).json["content"] == "New"
    both = client.patch(url, headers=alice.headers, json={"title": "T2", "content": "C2"}).json
    assert (both["title"], both["content"]) == ("T2", "C2")
    assert client.get(url).json == both


def test_an_empty_patch_changes_nothing(client, alice):
    post = alice.publish()

    response = client.patch(f"/api/boards/{post['id']}", headers=alice.headers, json={})

    assert response.status_code == 200
    assert response.json == post


def test_the_author_stays_as_named_at_creation(client, alice, tokens):
    post = alice.publish()
    renamed = tokens.bearer(sub=alice.id, name="Alice Renamed")

    response = client.patch(f"/api/boards/{post['id']}", headers=renamed, json={"title": "Still mine"})

    assert response.status_code == 200
    assert response.json["author"] == {"id": alice.id, "name": "Alice"}


def test_another_user_cannot_change_a_post(client, alice, bob):
    post = alice.publish()

    response = client.patch(f"/api/boards/{post['id']}", headers=bob.headers, json={"title": "Mine now"})

    assert_problem(response, 403, "forbidden")
    assert client.get(f"/api/boards/{post['id']}").json == post


def test_patch_of_an_unknown_post_is_not_found(client, alice):
    response = client.patch("/api/boards/" + "0" * 32, headers=alice.headers, json={"title": "New"})

    assert_problem(response, 404, "not_found")


def test_patch_validates_the_body_before_looking_up_the_post(client, alice, bob):
    post = alice.publish()

    # Our documented order: 401, then 400, then 404, then 403.
    assert_problem(
        client.patch("/api/boards/" + "0" * 32, headers=alice.headers, json={"title": ""}), 400, "validation_error"
    )
    assert_problem(
        client.patch(f"/api/boards/{post['id']}", headers=bob.headers, json={"title": ""}), 400, "validation_error"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": None}, "title"),
        ({"content": ""}, "content"),
        ({"content": "c" * 20001}, "content"),
        ({"content": None}, "content"),
        ({"content": 7}, "content"),
    ],
)
def test_patch_rejects_invalid_fields(client, alice, body, field):
    post = alice.publish()

    response = client.patch(f"/api/boards/{post['id']}", headers=alice.headers, json=body)

    problem = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert client.get(f"/api/boards/{post['id']}").json == post


# --- delete ------------------------------------------------------------------------------------


def test_author_deletes_a_post(client, alice):
    post, other = alice.publish(), alice.publish()
    url = f"/api/boards/{post['id']}"

    response = client.delete(url, headers=alice.headers)

    assert response.status_code == 204 and response.data == b""
    assert_problem(client.get(url), 404, "not_found")
    assert_problem(client.delete(url, headers=alice.headers), 404, "not_found")
    assert_problem(client.patch(url, headers=alice.headers, json={"title": "x"}), 404, "not_found")
    assert client.get("/api/boards").json["items"] == [other]


def test_another_user_cannot_delete_a_post(client, alice, bob):
    post = alice.publish()

    assert_problem(client.delete(f"/api/boards/{post['id']}", headers=bob.headers), 403, "forbidden")
    assert client.get(f"/api/boards/{post['id']}").json == post


def test_delete_of_an_unknown_post_is_not_found(client, alice):
    assert_problem(client.delete("/api/boards/" + "0" * 32, headers=alice.headers), 404, "not_found")


# --- 401 ---------------------------------------------------------------------------------------


@pytest.fixture
def post_id(alice: Author) -> str:
    return alice.publish()["id"]


def _call(client, method: str, path: str, post_id: str, headers: dict[str, str]):
    return getattr(client, method)(path.format(id=post_id), headers=headers, json={"title": "T", "content": "C"})


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_calls_without_a_token_are_token_missing(client, post_id, method, path):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = _call(client, method, path, post_id, headers)

        assert_problem(response, 401, "token_missing")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_calls_with_an_expired_token_are_token_expired(client, tokens, alice, post_id, method, path):
    now = int(time.time())
    headers = tokens.bearer(sub=alice.id, iat=now - 120, exp=now - 60)

    response = _call(client, method, path, post_id, headers)

    assert_problem(response, 401, "token_expired")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description=')


@pytest.fixture(scope="module")
def stranger_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("forgery", ["garbage", "empty", "audience", "issuer", "typ", "unknown_kid", "signature"])
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_calls_with_a_bad_token_are_invalid_token(
    client, tokens, alice, post_id, stranger_key, method, path, forgery
):
    token = {
        "garbage": lambda: "abc.def.ghi",
        "empty": lambda: "",
        "audience": lambda: tokens.make(sub=alice.id, aud="someone-else"),
        "issuer": lambda: tokens.make(sub=alice.id, iss="https://evil.example"),
        "typ": lambda: tokens.make(sub=alice.id, headers={"typ": "JWT"}),
        "unknown_kid": lambda: tokens.make(sub=alice.id, headers={"kid": "unknown"}),
        "signature": lambda: tokens.make(sub=alice.id, key=stranger_key),
    }[forgery]()

    response = _call(client, method, path, post_id, {"Authorization": f"Bearer {token}"})

    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_authentication_comes_before_validation(client):
    response = client.post("/api/boards", json={"title": ""})

    assert_problem(response, 401, "token_missing")


def test_reads_need_no_token(client, post_id):
    assert client.get("/api/boards").status_code == 200
    assert client.get(f"/api/boards/{post_id}").status_code == 200


# --- conventions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("post", "/api/boards"), ("patch", "/api/boards/{id}")])
@pytest.mark.parametrize("data", ["{not json", "", '{"title": "T",}', "\xff\xfe"])
def test_a_body_that_is_not_json_is_invalid_json(client, alice, post_id, method, path, data):
    response = getattr(client, method)(
        path.format(id=post_id), headers=alice.headers, data=data, content_type="application/json"
    )

    assert_problem(response, 400, "invalid_json")


def test_a_body_over_the_limit_is_payload_too_large(client, alice):
    response = client.post(
        "/api/boards", headers=alice.headers, data="x" * (1024 * 1024 + 1), content_type="application/json"
    )

    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/boards"),
        ("delete", "/api/boards"),
        ("patch", "/api/boards"),
        ("put", "/api/boards/{id}"),
        ("post", "/api/boards/{id}"),
    ],
)
def test_a_wrong_method_is_405(client, alice, post_id, method, path):
    response = getattr(client, method)(path.format(id=post_id), headers=alice.headers, json={})

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"]


def test_an_unknown_path_is_not_found(client, post_id):
    assert_problem(client.get(f"/api/boards/{post_id}/comments"), 404, "not_found")


def test_request_id_is_echoed_or_made_up(client, alice):
    mine = {"X-Request-ID": "req-1234.abc"}

    assert client.get("/api/boards", headers=mine).headers["X-Request-ID"] == "req-1234.abc"
    assert client.get("/api/boards/" + "0" * 32, headers=mine).headers["X-Request-ID"] == "req-1234.abc"
    invalid = client.post("/api/boards", headers={**alice.headers, **mine}, json={})
    assert invalid.status_code == 400 and invalid.headers["X-Request-ID"] == "req-1234.abc"
    made_up = client.get("/api/boards", headers={"X-Request-ID": 'bad id {"forged": 1}'}).headers["X-Request-ID"]
    assert made_up and made_up != 'bad id {"forged": 1}'
    assert client.get("/api/boards").headers["X-Request-ID"]


# --- operations --------------------------------------------------------------------------------


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok", "service": "board_service"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "keys": "ok"}


def test_not_ready_without_public_keys(database_url, tmp_path):
    app = create_app(BoardConfig(database_url=database_url, jwks_path=tmp_path / "missing.json", app_env="test"))
    try:
        problem = assert_problem(app.test_client().get("/readyz"), 503, "unavailable")
        assert problem["checks"] == {"keys": "no public keys"}
    finally:
        BoardContext.of(app).engine.dispose()


def test_openapi_documents_every_board_call(client):
    document = client.get("/openapi.json").json

    assert set(document["paths"]["/api/boards"]) == {"get", "post"}
    assert set(document["paths"]["/api/boards/{post_id}"]) == {"get", "patch", "delete"}
    assert document["paths"]["/api/boards"]["post"]["security"] == [{"bearer": []}]
    assert "403" in document["paths"]["/api/boards/{post_id}"]["delete"]["responses"]
    assert {"PostPublic", "PostPage", "PostCreate", "PostUpdate"} <= set(document["components"]["schemas"])
