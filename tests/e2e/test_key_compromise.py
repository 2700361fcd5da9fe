"""The key-compromise drill from SECURITY.md, run as its commands: every old token stops working."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.processes import REPO, ServiceProcess


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_rotate_drop_old_and_revoke_all_sessions(tmp_path: Path, keys_dir: Path, redis_url: str):
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    env = {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/auth.db",
        "REDIS_URL": redis_url,
        "SIGNING_KEY_PATH": str(keys / "signing.pem"),
        "JWKS_PATH": str(keys / "jwks.json"),
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }
    auth = ServiceProcess("auth_service", env, tmp_path, workers=1).start()
    profile = ServiceProcess(
        "profile_service", {**env, "JWKS_URL": f"{auth.url}/.well-known/jwks.json"}, tmp_path, workers=1
    ).start()
    try:
        credentials = {"email": "drill@example.com", "password": PASSWORD}
        requests.post(f"{auth.url}/api/auth/signup", json={**credentials, "name": "Drill"})
        login = requests.post(f"{auth.url}/api/auth/login", json=credentials)
        old_access, old_refresh = login.json()["access_token"], login.cookies["refresh_token"]
        assert (
            requests.get(
                f"{profile.url}/api/profiles/me", headers={"Authorization": f"Bearer {old_access}"}
            ).status_code
            == 200
        )

        # The drill, exactly as SECURITY.md lists it.
        assert "signing with new key" in _run(env, "keys", "rotate", "--dir", str(keys), "--drop-old")
        assert "ended 1 sessions" in _run(env, "sessions", "revoke-all")
        for service in (auth, profile):
            service.stop()
            service.start()

        stale = requests.get(f"{profile.url}/api/profiles/me", headers={"Authorization": f"Bearer {old_access}"})
        assert stale.status_code == 401 and stale.json()["code"] == "invalid_token"
        refused = requests.post(f"{auth.url}/api/auth/refresh", headers={"Cookie": f"refresh_token={old_refresh}"})
        assert refused.status_code == 401
        assert len(requests.get(f"{auth.url}/.well-known/jwks.json").json()["keys"]) == 1

        fresh = requests.post(f"{auth.url}/api/auth/login", json=credentials).json()["access_token"]
        assert (
            requests.get(f"{profile.url}/api/profiles/me", headers={"Authorization": f"Bearer {fresh}"}).status_code
            == 200
        )
    finally:
        auth.stop()
        profile.stop()
