"""Revocations reach every worker of profile and board through the feed, long before the access
tokens expire: logout, one revoked session, logout-all, theft; and a process started afterwards
replays them (catch-up). The stack runs the `make run` way, 2 gunicorn workers per service."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.faults.conftest import post_with_cookie, refresh_cookie_of
from tests.support.processes import ServiceProcess
from tests.support.stack import Stack
from tests.support.workers import answers_from_every_worker

PASSWORD = "correct horse battery"
# Far longer than any test here: a refused token was revoked, not expired.
ACCESS_TOKEN_TTL = 3600
PROPAGATION_DEADLINE = 3.0  # seconds; the bench measures the real figure (goal p99 <= 1 s)
# A call of each resource service that needs a caller: (method, path, body).
RESOURCES = {
    "profile": ("GET", "/api/profiles/me", None),
    "board": ("POST", "/api/boards", {"title": "revocation", "content": "probe"}),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # No reuse grace: presenting a replaced refresh token is theft at once.
    running = Stack(
        tmp_path_factory.mktemp("revocation-stack"), ACCESS_TOKEN_TTL=str(ACCESS_TOKEN_TTL), REFRESH_REUSE_GRACE="0"
    ).start()
    yield running
    running.stop()


class Device:
    """One login: its access token and the refresh cookie, carried by hand (requests keeps Secure
    cookies off plain http)."""

    def __init__(self, stack: Stack, email: str) -> None:
        self.stack = stack
        login = requests.post(f"{stack.url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
        assert login.status_code == 200, login.text
        self.access_token = login.json()["access_token"]
        self.refresh_token = refresh_cookie_of(login)
        self.session_id = self.refresh_token.split(".", 1)[0]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_user(stack: Stack) -> str:
    email = f"rev-{uuid.uuid4().hex[:10]}@example.com"
    created = requests.post(
        f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Rev"}, timeout=10
    )
    assert created.status_code == 201, created.text
    return email


def works_everywhere(stack: Stack, device: Device) -> None:
    for service, (method, path, body) in RESOURCES.items():
        response = requests.request(
            method, f"{stack.service_url(service)}{path}", json=body, headers=device.bearer, timeout=10
        )
        assert response.status_code in (200, 201), (service, response.text)


def refused_on_every_worker(stack: Stack, device: Device, code: str = "token_revoked") -> None:
    """Within the deadline each service refuses the token, then every one of its workers does."""
    for service, (method, path, body) in RESOURCES.items():
        url = f"{stack.service_url(service)}{path}"
        deadline = time.monotonic() + PROPAGATION_DEADLINE
        while requests.request(method, url, json=body, headers=device.bearer, timeout=10).status_code != 401:
            assert time.monotonic() < deadline, f"{service} still accepts the token"
            time.sleep(0.05)
        answers_by_pid = answers_from_every_worker(method, url, device.bearer, stack.log, json_body=body)
        for pid, answers in answers_by_pid.items():
            for answer in answers:
                assert answer.status_code == 401, (service, pid, answer.text)
                assert answer.json()["code"] == code, (service, pid, answer.text)
                challenge = answer.headers["WWW-Authenticate"]
                assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description='), challenge


def test_logout_revokes_the_access_token_on_every_worker(stack):
    device = Device(stack, new_user(stack))
    works_everywhere(stack, device)
    assert post_with_cookie(f"{stack.url}/api/auth/logout", device.refresh_token).status_code == 204
    refused_on_every_worker(stack, device)


def test_revoking_one_session_leaves_the_users_other_session_working(stack):
    email = new_user(stack)
    laptop, phone = Device(stack, email), Device(stack, email)
    ended = requests.delete(f"{stack.url}/api/auth/sessions/{phone.session_id}", headers=laptop.bearer, timeout=10)
    assert ended.status_code == 204
    refused_on_every_worker(stack, phone)
    works_everywhere(stack, laptop)
    # Auth's own Bearer endpoints say the same.
    sessions = requests.get(f"{stack.url}/api/auth/sessions", headers=phone.bearer, timeout=10)
    assert sessions.status_code == 401 and sessions.json()["code"] == "token_revoked"


def test_logout_all_revokes_every_session_of_the_user_and_no_one_elses(stack):
    email = new_user(stack)
    laptop, phone = Device(stack, email), Device(stack, email)
    bystander = Device(stack, new_user(stack))
    assert requests.post(f"{stack.url}/api/auth/logout-all", headers=laptop.bearer, timeout=10).status_code == 204
    refused_on_every_worker(stack, laptop)
    refused_on_every_worker(stack, phone)
    works_everywhere(stack, bystander)
    time.sleep(1)  # a cut-off covers its own second (iat has whole seconds)
    works_everywhere(stack, Device(stack, email))  # logging in again works


def test_a_stolen_refresh_token_reused_revokes_the_sessions_access_tokens(stack):
    device = Device(stack, new_user(stack))
    stolen = device.refresh_token
    rotated = post_with_cookie(f"{stack.url}/api/auth/refresh", stolen)
    assert rotated.status_code == 200
    device.access_token = rotated.json()["access_token"]  # the legitimate client's new token
    works_everywhere(stack, device)
    reused = post_with_cookie(f"{stack.url}/api/auth/refresh", stolen)  # the thief, after the rotation
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_refresh_token"
    refused_on_every_worker(stack, device)


def test_a_resource_service_started_after_the_revocations_refuses_them(stack, tmp_path):
    email = new_user(stack)
    revoked, kept = Device(stack, email), Device(stack, email)
    assert post_with_cookie(f"{stack.url}/api/auth/logout", revoked.refresh_token).status_code == 204
    profile_env = json.loads((stack.var_dir / "env" / "profile.json").read_text())
    late = ServiceProcess(
        "profile_service",
        {
            "APP_ENV": "test",
            "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/late-profile.db",
            "JWKS_PATH": profile_env["JWKS_PATH"],
            "REVOCATION_FEED_URL": profile_env["REVOCATION_FEED_URL"],
        },
        tmp_path,
        workers=2,
    ).start()
    try:
        # Its very first answers, on each worker: the replay runs before the first request is served.
        first_answers = answers_from_every_worker("GET", f"{late.url}/api/profiles/me", revoked.bearer, late.log)
        for pid, answers in first_answers.items():
            assert [a.json()["code"] for a in answers] == ["token_revoked"] * len(answers), pid
        assert requests.get(f"{late.url}/api/profiles/me", headers=kept.bearer, timeout=10).status_code == 200
        ready = requests.get(f"{late.url}/readyz", timeout=10).json()
        assert ready["revocations"] == {"state": "live", "stale_seconds": 0}, ready
    finally:
        late.stop()
