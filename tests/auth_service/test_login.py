"""POST /api/auth/login: tokens, the cookie, indistinguishable failures, throttling, rehashing."""

import base64
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from auth_service.context import AuthContext
from auth_service.sessions import SESSION_FIELDS, F
from auth_service.users import UserStore
from tests.auth_service.conftest import PASSWORD, refresh_cookie


def test_login_returns_a_token_response(auth):
    user = auth.signup(email="ada@example.com")
    response = auth.login("ADA@example.com")
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user"] == user
    assert response.headers["Cache-Control"] == "no-store"


def test_refresh_cookie_has_exactly_the_contract_attributes(auth):
    user = auth.signup()
    response = auth.login(user["email"])
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("refresh_token=")]
    attributes = {
        part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2] for part in header.split(";")[1:]
    }
    assert set(attributes) == {"httponly", "secure", "samesite", "path", "max-age"}  # no Expires (docs/API.md)
    assert attributes["httponly"] == "" and attributes["secure"] == ""
    assert attributes["samesite"] == "Strict"
    assert attributes["path"] == "/api/auth"
    assert attributes["max-age"] == "1209600"
    token = refresh_cookie(response)
    assert len(token) >= 43 + 33  # session id, a dot and 256 random bits
    assert token not in response.get_data(as_text=True)


def test_redis_holds_no_refresh_token_material(app, auth, client):
    user = auth.signup()
    tokens = [refresh_cookie(auth.login(user["email"]))]
    for _ in range(3):
        client.set_cookie("refresh_token", tokens[-1], path="/api/auth")
        tokens.append(refresh_cookie(client.post("/api/auth/refresh")))
    redis = AuthContext.of(app).redis
    keys = list(redis.scan_iter(match="*"))  # on a Cluster, SCAN visits every primary (KEYS asks one node)
    dump = b"".join(key + redis.dump(key) for key in keys)
    for token in tokens:
        proof = token.split(".")[2]
        assert proof.encode() not in dump and token.encode() not in dump
        assert base64.urlsafe_b64decode(proof + "=") not in dump  # nor its bytes
    # And nothing to derive one from: the user's document holds user data, generations and times.
    [document] = [json.loads(redis.get(key)) for key in keys if key.endswith(b"}") and b":u:{" in key]
    assert document["u"] == user["id"] and set(document) == {"u", "e", "n", "s"}
    [session] = document["s"].values()
    assert len(session) == len(SESSION_FIELDS) - 1 and session[F.generation - 1] == 3  # unbound: no F.jkt


def test_unknown_email_and_wrong_password_look_the_same(auth):
    user = auth.signup()
    wrong_password = auth.login(user["email"], password="not the password")
    unknown_email = auth.login("nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json == unknown_email.json
    assert wrong_password.json["code"] == "invalid_credentials"
    assert refresh_cookie(wrong_password) is None


def test_control_characters_in_the_email_are_a_validation_error(client):
    response = client.post("/api/auth/login", json={"email": "a\x00@example.com", "password": "whatever1"})
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "email"


def test_login_with_missing_fields_is_a_validation_error(client):
    response = client.post("/api/auth/login", json={"email": "a@example.com"})
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"
    assert response.json["errors"][0]["field"] == "password"


def test_repeated_failures_are_throttled_per_account_and_address(make_app):
    app = make_app(login_max_failures=3, login_failure_window=60)
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
    client.post("/api/auth/signup", json={"email": "other@example.com", "password": PASSWORD, "name": "O"})
    for _ in range(3):
        assert (
            client.post("/api/auth/login", json={"email": "victim@example.com", "password": "wrong-pass"}).status_code
            == 401
        )
    throttled = client.post("/api/auth/login", json={"email": "victim@example.com", "password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.json["code"] == "too_many_attempts"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # Another account from the same address is unaffected, and so is this account from elsewhere.
    assert client.post("/api/auth/login", json={"email": "other@example.com", "password": PASSWORD}).status_code == 200
    elsewhere = client.post(
        "/api/auth/login",
        json={"email": "victim@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert elsewhere.status_code == 200


def test_unknown_emails_are_throttled_too(make_app):
    client = make_app(login_max_failures=2).test_client()
    statuses = [
        client.post("/api/auth/login", json={"email": "ghost@example.com", "password": "whatever1"}).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_success_clears_the_failure_count(make_app):
    client = make_app(login_max_failures=2).test_client()
    client.post("/api/auth/signup", json={"email": "c@example.com", "password": PASSWORD, "name": "C"})
    for _ in range(2):
        client.post("/api/auth/login", json={"email": "c@example.com", "password": "wrong-pass"})
        assert client.post("/api/auth/login", json={"email": "c@example.com", "password": PASSWORD}).status_code == 200


def test_password_is_rehashed_when_parameters_change(make_app):
    old = make_app(argon2_time_cost=1)
    old.test_client().post("/api/auth/signup", json={"email": "r@example.com", "password": PASSWORD, "name": "R"})
    store: UserStore = AuthContext.of(old).accounts.users
    assert "t=1" in store.find_by_email("r@example.com").password_hash

    new = make_app(argon2_time_cost=2)
    assert (
        new.test_client().post("/api/auth/login", json={"email": "r@example.com", "password": PASSWORD}).status_code
        == 200
    )
    assert "t=2" in store.find_by_email("r@example.com").password_hash
    # The new hash still verifies.
    assert (
        new.test_client().post("/api/auth/login", json={"email": "r@example.com", "password": PASSWORD}).status_code
        == 200
    )


@pytest.mark.parametrize("password", ["ünïcödé-pässwörd", "emoji 🔐🔐🔐🔐", "   spaces   "])
def test_any_unicode_password_round_trips(auth, password):
    user = auth.signup(password=password)
    assert auth.login(user["email"], password=password).status_code == 200


def test_parallel_wrong_passwords_never_exceed_the_limit(make_app):
    """Twenty guesses released at once: exactly the allowed number reach the password check."""
    app = make_app(login_max_failures=3, login_failure_window=60)
    app.test_client().post("/api/auth/signup", json={"email": "target@example.com", "password": PASSWORD, "name": "T"})
    barrier = threading.Barrier(20)

    def guess(attempt: int) -> int:
        client = app.test_client()
        barrier.wait(timeout=10)
        return client.post(
            "/api/auth/login", json={"email": "target@example.com", "password": f"guess {attempt}"}
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(guess, range(20)))  # a guesser's exception fails the test here
    assert sorted(statuses) == [401] * 3 + [429] * 17


def test_an_unknown_email_costs_what_a_wrong_password_costs(make_app):
    """The dummy hash: compare medians of interleaved logins with a wide margin, never absolute times."""
    # A real (if small) argon2 cost, so hashing dominates the request; the throttle stays out of the way.
    app = make_app(argon2_time_cost=2, argon2_memory_cost=16384, login_max_failures=100)
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "known@example.com", "password": PASSWORD, "name": "K"})

    def login_seconds(email: str) -> float:
        started = time.perf_counter()
        assert client.post("/api/auth/login", json={"email": email, "password": "wrong password"}).status_code == 401
        return time.perf_counter() - started

    known, unknown = [], []
    for _ in range(15):  # interleaved, so a busy moment hits both sides alike
        known.append(login_seconds("known@example.com"))
        unknown.append(login_seconds("nobody@example.com"))
    # Without the dummy hash an unknown email answers in a small fraction of the time.
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (known, unknown)


def test_the_failure_window_is_fixed_not_sliding(make_app):
    """Failures inside the window do not push its end back: it ends LOGIN_FAILURE_WINDOW after the first."""
    client = make_app(login_max_failures=2, login_failure_window=2).test_client()
    wrong = {"email": "slide@example.com", "password": "wrong-pass"}
    started = time.monotonic()
    assert client.post("/api/auth/login", json=wrong).status_code == 401
    time.sleep(1.2)
    assert client.post("/api/auth/login", json=wrong).status_code == 401
    assert client.post("/api/auth/login", json=wrong).status_code == 429
    time.sleep(max(0.0, 2.3 - (time.monotonic() - started)))
    assert client.post("/api/auth/login", json=wrong).status_code == 401  # a new window


def test_retry_after_is_the_seconds_left_in_the_window(make_app):
    client = make_app(login_max_failures=1, login_failure_window=1).test_client()
    wrong = {"email": "soon@example.com", "password": "wrong-pass"}
    assert client.post("/api/auth/login", json=wrong).status_code == 401
    throttled = client.post("/api/auth/login", json=wrong)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
