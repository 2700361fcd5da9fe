"""Two auth replicas on one Redis: a DPoP proof's `jti` used at one is refused at the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.dpop import DpopKey
from tests.support.processes import ServiceProcess

LOGIN, REFRESH = "/api/auth/login", "/api/auth/refresh"


@pytest.fixture
def replicas(standalone_redis_url: str, keys_dir: Path, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    env = {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'auth.db'}",
        "REDIS_URL": standalone_redis_url,
        "SIGNING_KEY_PATH": str(keys_dir / "signing.pem"),
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }
    started = [ServiceProcess("auth_service", env, tmp_path, workers=1)]
    started[0].start()  # the first one migrates the shared database before the second starts
    started.append(ServiceProcess("auth_service", env, tmp_path, workers=1).start())
    yield started
    for process in started:
        process.stop()


def test_a_proofs_jti_used_at_one_replica_is_refused_at_the_other(replicas):
    first, second = (process.url for process in replicas)
    key = DpopKey()
    body = {"email": "replica@example.com", "password": PASSWORD}
    assert requests.post(f"{first}/api/auth/signup", json={**body, "name": "R"}, timeout=10).status_code == 201
    login = requests.post(f"{first}{LOGIN}", json=body, headers={"DPoP": key.proof("POST", LOGIN)}, timeout=10)
    assert login.status_code == 200, login.text
    cookie = {"Cookie": f"refresh_token={login.cookies['refresh_token']}"}

    proof = key.proof("POST", REFRESH)
    used = requests.post(f"{first}{REFRESH}", headers={**cookie, "DPoP": proof}, timeout=10)
    assert used.status_code == 200, used.text
    cookie = {"Cookie": f"refresh_token={used.cookies['refresh_token']}"}
    replayed = requests.post(f"{second}{REFRESH}", headers={**cookie, "DPoP": proof}, timeout=10)
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_dpop_proof"
    assert replayed.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    fresh = requests.post(f"{second}{REFRESH}", headers={**cookie, "DPoP": key.proof("POST", REFRESH)}, timeout=10)
    assert fresh.status_code == 200, fresh.text  # the session is untouched by the replay
