"""The operator commands log their security events as the service does, and `sessions revoke-all`
is counted in the service's metrics when run where the service keeps them (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from auth_service.sessions import SessionStore, SessionUser
from tests.support.processes import REPO

pytestmark = pytest.mark.servers  # runs the commands as processes


def run_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth_service", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )


def security_events(stderr: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "security"]


def test_a_key_rotation_is_a_security_event(tmp_path: Path, keys_dir: Path):
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    old_kid = json.loads((keys / "jwks.json").read_text())["keys"][0]["kid"]
    rotated = run_command({}, "keys", "rotate", "--dir", str(keys), "--drop-old")
    [event] = security_events(rotated.stderr)
    new_kid = json.loads((keys / "jwks.json").read_text())["keys"][0]["kid"]
    assert (event["event"], event["kid"], event["withdrawn"]) == ("signing_key_rotated", new_kid, [old_kid])
    assert "PRIVATE KEY" not in rotated.stderr + rotated.stdout


def test_revoking_everyone_is_an_event_and_counted_in_the_services_metrics(tmp_path: Path, standalone_redis_url: str):
    prefix = f"cmd-{uuid.uuid4().hex[:8]}:"
    store = SessionStore(
        redis.Redis.from_url(standalone_redis_url), refresh_key=os.urandom(32), prefix=prefix, ttl=60, reuse_grace=5
    )
    for number in range(3):
        store.create(SessionUser(f"user-{number}", f"u{number}@example.com", "U"), "test agent")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "APP_ENV": "test",
        "REDIS_URL": standalone_redis_url,
        "REDIS_PREFIX": prefix,
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/auth.db",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    ended = run_command(env, "sessions", "revoke-all")
    assert "ended 3 sessions" in ended.stdout
    [event] = security_events(ended.stderr)
    assert (event["event"], event["sessions"]) == ("all_sessions_revoked", 3)

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert samples[("auth_sessions_revoked_total", (("reason", "admin"),))] == 3
