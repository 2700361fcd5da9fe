"""The auth service as production runs it: gunicorn workers sharing Redis and the database."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.processes import ServiceProcess
from tests.support.racing import refresh_together


@pytest.fixture
def auth_process(database_url: str, redis_url: str, keys_dir: Path, tmp_path: Path):
    env = {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SIGNING_KEY_PATH": str(keys_dir / "signing.pem"),
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }
    process = ServiceProcess("auth_service", env, tmp_path, workers=2, threads=8).start()
    yield process
    process.stop()


def _login(base: str, email: str) -> requests.Session:
    session = requests.Session()
    assert (
        session.post(
            f"{base}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Racer"}
        ).status_code
        == 201
    )
    assert session.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
    return session


def _refresh(base: str, token: str) -> requests.Response:
    return requests.post(f"{base}/api/auth/refresh", headers={"Cookie": f"refresh_token={token}"}, timeout=10)


# Through HTTP a non-atomic rotation forks a round only now and then; rounds make it show.
ROUNDS = 10


def test_twenty_parallel_refreshes_keep_exactly_one_chain(auth_process):
    """Rounds of 20 racing refreshes; the SessionStore test is the sharp one, this is the same race end to end."""
    base = auth_process.url
    for round_ in range(ROUNDS):
        browser = _login(base, f"racer{round_}@example.com")
        token = browser.cookies["refresh_token"]

        responses = refresh_together(base, token, 20)

        assert [r.status_code for r in responses] == [200] * 20  # nobody was logged out
        successors = {r.cookies["refresh_token"] for r in responses}
        assert len(successors) == 1, f"round {round_}: the session forked"  # every racer got the same successor
        [successor] = successors
        assert successor != token

        # The chain continues from that successor, and there is still one session.
        next_response = _refresh(base, successor)
        assert next_response.status_code == 200
        access = next_response.json()["access_token"]
        sessions = requests.get(f"{base}/api/auth/sessions", headers={"Authorization": f"Bearer {access}"}).json()
        assert len(sessions["sessions"]) == 1


def test_parallel_logins_and_refreshes_of_many_users(auth_process):
    base = auth_process.url
    browsers = [_login(base, f"user{i}@example.com") for i in range(5)]

    def refresh_chain(browser: requests.Session) -> list[int]:
        # requests keeps Secure cookies off plain http (browsers make an exception for localhost),
        # so the cookie travels by hand here.
        token, statuses = browser.cookies["refresh_token"], []
        for _ in range(5):
            response = _refresh(base, token)
            statuses.append(response.status_code)
            token = response.cookies.get("refresh_token", token)
        return statuses

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(refresh_chain, browsers))
    assert all(statuses == [200] * 5 for statuses in results)


def test_logs_carry_request_ids_and_never_secrets(auth_process):
    base = auth_process.url
    browser = requests.Session()
    email = "secretive@example.com"
    browser.post(f"{base}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "S"})
    login = browser.post(
        f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, headers={"X-Request-ID": "login-trace-1"}
    )
    access = login.json()["access_token"]
    first_refresh = browser.cookies["refresh_token"]
    browser.post(f"{base}/api/auth/login", json={"email": email, "password": "wrong password!"})
    second_refresh = _refresh(base, first_refresh).cookies["refresh_token"]
    browser.get(f"{base}/api/auth/sessions", headers={"Authorization": f"Bearer {access}"})
    browser.get(f"{base}/api/auth/sessions", headers={"Authorization": "Bearer garbage.token.here"})
    _refresh(base, first_refresh)  # reuse within grace
    auth_process.stop()

    log = auth_process.log()
    assert '"request_id": "login-trace-1"' in log
    assert '"path": "/api/auth/login"' in log
    for secret in (
        PASSWORD,
        "wrong password!",
        access,
        access.split(".")[2],
        first_refresh,
        first_refresh.split(".")[2],  # the proofs (the session id and generation are no secrets)
        second_refresh.split(".")[2],
    ):
        assert secret not in log
