"""The wiring every service shares: problem documents, request ids, limits, config that fails fast."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel, Field

from auth_service.config import AuthConfig
from shared.app_wiring import create_service_app
from shared.config import ConfigError
from shared.openapi import operation
from tests.support.contexts import bare_context


class Echo(BaseModel):
    text: str = Field(min_length=1, max_length=5)


class Page(BaseModel):
    limit: int = Field(20, ge=1, le=100)


@pytest.fixture
def app():
    def broken_check():
        raise RuntimeError("boom")

    app = create_service_app(
        "wiring_test",
        bare_context(),
        readiness_checks={"ok": lambda: None, "broken": broken_check},
        unavailable_errors=(ConnectionError,),
    )

    @app.post("/echo")
    @operation("Echo", body=Echo, responses={201: Echo})
    def echo(body: Echo):
        return body, 201

    @app.get("/page")
    @operation("Page", query=Page, responses={200: Page})
    def page(query: Page):
        return query

    @app.get("/crash")
    def crash():
        raise KeyError("secret-internal-detail")

    @app.get("/outage")
    def outage():
        raise ConnectionError("database host 10.0.0.1 refused")

    return app


def test_body_is_validated_and_serialized(app):
    client = app.test_client()
    assert client.post("/echo", json={"text": "hi", "extra": 1}).json == {"text": "hi"}
    bad = client.post("/echo", json={"text": "too long"})
    assert bad.status_code == 400 and bad.json["errors"][0]["field"] == "text"


def test_query_is_validated(app):
    client = app.test_client()
    assert client.get("/page?limit=5").json == {"limit": 5}
    for bad in ("0", "101", "abc", ""):
        response = client.get(f"/page?limit={bad}")
        assert response.status_code == 400 and response.json["code"] == "validation_error"


def test_unexpected_errors_are_500_problems_without_internals(app, caplog):
    response = app.test_client().get("/crash")
    assert response.status_code == 500
    assert response.json["code"] == "internal_error"
    assert "secret-internal-detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_dependency_outages_are_503(app):
    response = app.test_client().get("/outage")
    assert response.status_code == 503
    assert response.json["code"] == "unavailable"
    assert "10.0.0.1" not in response.get_data(as_text=True)


def test_readyz_names_what_is_not_ready(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"broken": "RuntimeError"}
    assert "broken" in response.json["detail"]
    assert response.headers["Retry-After"] == "1"  # docs/API.md: every 503 `unavailable` has one


def test_openapi_lists_query_parameters_and_bodies(app):
    document = app.test_client().get("/openapi.json").json
    assert document["paths"]["/page"]["get"]["parameters"][0]["name"] == "limit"
    assert "requestBody" in document["paths"]["/echo"]["post"]
    assert "/crash" not in document["paths"]  # only documented operations are listed


def test_every_request_logs_one_json_line_with_its_id(capsys):
    logging.getLogger().handlers.clear()  # bind the JSON handler to this test's captured stderr
    app = create_service_app("wiring_test", bare_context(), readiness_checks={})
    app.test_client().get("/healthz", headers={"X-Request-ID": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [entry] = [line for line in lines if line.get("request_id") == "req-42"]
    assert entry["path"] == "/healthz" and entry["status"] == 200 and entry["service"] == "wiring_test"
    logging.getLogger().handlers.clear()


def test_config_from_env_fails_fast_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "an hour")
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_TTL"):
        AuthConfig.from_env()


def test_config_reads_api_variables(monkeypatch):
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "30")
    monkeypatch.setenv("AUTH_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example, https://b.example")
    config = AuthConfig.from_env()
    assert config.access_token_ttl == 30
    assert config.database_url == "sqlite:///x.db"
    assert config.origins == {"https://a.example", "https://b.example"}


def test_default_allowed_origin_is_the_gateway(monkeypatch):
    monkeypatch.setenv("GATEWAY_PORT", "9090")
    assert "http://localhost:9090" in AuthConfig.from_env().origins


@pytest.mark.parametrize("origins", ["not-an-origin", "https://a.example/path"])
def test_malformed_allowed_origins_stop_start_up(monkeypatch, origins):
    monkeypatch.setenv("ALLOWED_ORIGINS", origins)
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS"):
        AuthConfig.from_env()


def test_answers_to_requests_with_credentials_are_not_stored():
    app = create_service_app("cache_test", bare_context(), readiness_checks={})

    @app.get("/public")
    def public():
        return {"ok": True}

    @app.get("/cacheable")
    def cacheable():
        return {"ok": True}, 200, {"Cache-Control": "public, max-age=60"}

    client = app.test_client()
    assert "Cache-Control" not in client.get("/public").headers
    assert client.get("/public", headers={"Authorization": "Bearer x"}).headers["Cache-Control"] == "no-store"
    client.set_cookie("refresh_token", "x")
    assert client.get("/public").headers["Cache-Control"] == "no-store"
    assert client.get("/nowhere").headers["Cache-Control"] == "no-store"  # problem documents too
    assert client.get("/cacheable").headers["Cache-Control"] == "public, max-age=60"  # a route that knows


def test_answers_without_a_body_name_no_media_type():
    app = create_service_app("empty_test", bare_context(), readiness_checks={})

    @app.delete("/thing")
    def delete_thing():
        return "", 204

    client = app.test_client()
    deleted = client.delete("/thing")
    assert deleted.status_code == 204 and deleted.data == b""
    assert "Content-Type" not in deleted.headers
    options = client.options("/thing")
    assert options.status_code == 200 and options.data == b"" and "DELETE" in options.headers["Allow"]
    assert "Content-Type" not in options.headers
    # Answers with a body keep theirs.
    assert client.get("/healthz").headers["Content-Type"] == "application/json"
    assert client.get("/nowhere").headers["Content-Type"] == "application/problem+json"
