"""`/metrics` in one process (no PROMETHEUS_MULTIPROC_DIR), and METRICS_ENABLED=false turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from profile_service import create_app
from profile_service.config import ProfileConfig
from profile_service.context import ProfileContext
from profile_service.migrations import HISTORY
from tests.support.schemas import migrate


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/profile.db"
    migrate(url, HISTORY)
    return url


@pytest.mark.parametrize("enabled", [True, False])
def test_metrics_are_served_unless_turned_off(sqlite_url: str, keys_dir: Path, enabled: bool, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    config = ProfileConfig(
        database_url=sqlite_url, jwks_path=keys_dir / "jwks.json", app_env="test", metrics_enabled=enabled
    )
    app = create_app(config)
    client = app.test_client()
    assert client.get("/api/profiles/me").status_code == 401
    answer = client.get("/metrics")
    if enabled:
        assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
        assert 'access_token_verifications_total{outcome="missing",service="profile_service"}' in answer.text
        assert 'route="/api/profiles/me"' in answer.text
    else:
        assert answer.status_code == 404 and answer.json["code"] == "not_found"
        assert ProfileContext.of(app).verifier.metrics is None
    ProfileContext.of(app).engine.dispose()
