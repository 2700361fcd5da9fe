"""Resource services verify tokens on their own: auth down, auth restarted, keys rotated."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
import requests

from auth_service.keys import rotate_keys
from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.processes import ServiceProcess
from tests.support.tokens import TokenFactory


@pytest.fixture
def keys(tmp_path: Path, keys_dir: Path) -> Path:
    directory = tmp_path / "keys"
    shutil.copytree(keys_dir, directory)
    return directory


@pytest.fixture
def cluster(tmp_path: Path, keys: Path, redis_url: str):
    """Auth plus both resource services as gunicorn processes; resource keys from file and URL."""
    auth_env = {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/auth.db",
        "REDIS_URL": redis_url,
        "SIGNING_KEY_PATH": str(keys / "signing.pem"),
        "JWKS_PATH": str(keys / "jwks.json"),
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }
    auth = ServiceProcess("auth_service", auth_env, tmp_path, workers=1).start()
    # The resource services read a copy of the JWKS as it was at their start.
    public = tmp_path / "public-jwks.json"
    shutil.copy(keys / "jwks.json", public)
    resource_env = {
        "APP_ENV": "test",
        "JWKS_PATH": str(public),
        "JWKS_REFETCH_COOLDOWN": "30",
        "JWKS_URL": f"{auth.url}/.well-known/jwks.json",
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
        "BOARD_DATABASE_URL": f"sqlite:///{tmp_path}/board.db",
    }
    profile = ServiceProcess("profile_service", resource_env, tmp_path, workers=1).start()
    board = ServiceProcess("board_service", resource_env, tmp_path, workers=1).start()
    processes = {"auth": auth, "profile": profile, "board": board}
    yield processes
    for process in processes.values():
        process.stop()


def _login(auth: ServiceProcess) -> str:
    email = f"{secrets.token_hex(4)}@example.com"
    requests.post(f"{auth.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Ind"})
    return requests.post(f"{auth.url}/api/auth/login", json={"email": email, "password": PASSWORD}).json()[
        "access_token"
    ]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _jwks_requests(auth: ServiceProcess) -> int:
    return auth.log().count('"path": "/.well-known/jwks.json"')


def test_resource_services_keep_working_while_auth_is_down(cluster, tokens):
    token = _login(cluster["auth"])
    cluster["auth"].stop()
    profile, board = cluster["profile"], cluster["board"]
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(token)).status_code == 200
    created = requests.post(f"{board.url}/api/boards", headers=_bearer(token), json={"title": "t", "content": "c"})
    assert created.status_code == 201
    forged = _bearer(token[:-6] + "AAAAAA")
    for bad in (
        requests.get(f"{profile.url}/api/profiles/me", headers=forged),
        requests.post(f"{board.url}/api/boards", headers=forged, json={"title": "t", "content": "c"}),
    ):
        assert bad.status_code == 401 and bad.json()["code"] == "invalid_token"


def test_a_resource_service_restarted_while_auth_is_down_works_from_the_key_file(cluster):
    token = _login(cluster["auth"])
    cluster["auth"].stop()
    profile = cluster["profile"]
    profile.stop()
    profile.start()
    assert requests.get(f"{profile.url}/readyz").status_code == 200
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(token)).status_code == 200


def test_a_rotated_key_is_fetched_once_and_old_tokens_keep_working(cluster, keys):
    auth, profile = cluster["auth"], cluster["profile"]
    old_token = _login(auth)
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(old_token)).status_code == 200

    rotate_keys(keys)  # auth introduces a second key ...
    auth.stop()
    auth.start()  # ... and signs with it after a restart
    new_token = _login(auth)
    assert new_token.split(".")[0] != old_token.split(".")[0]

    before = _jwks_requests(auth)
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(new_token)).status_code == 200
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(new_token)).status_code == 200
    assert _jwks_requests(auth) - before == 1
    assert requests.get(f"{profile.url}/api/profiles/me", headers=_bearer(old_token)).status_code == 200


def test_a_burst_of_unknown_kids_causes_at_most_one_fetch_per_cooldown(cluster, tokens: TokenFactory):
    auth, board = cluster["auth"], cluster["board"]
    before = _jwks_requests(auth)
    session = requests.Session()
    for _ in range(1000):
        junk = tokens.make(headers={"kid": secrets.token_urlsafe(12)})
        response = session.post(f"{board.url}/api/boards", headers=_bearer(junk), json={"title": "t", "content": "c"})
        assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    assert _jwks_requests(auth) - before <= 1
