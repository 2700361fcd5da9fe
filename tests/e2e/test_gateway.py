"""The gateway's own behaviour: request ids, limits, problem documents, headers, routing."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.processes import ServiceProcess
from tests.support.stack import GatewayProcess


def test_request_id_travels_through_every_log(stack):
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = requests.post(f"{stack.url}/api/auth/login", json={"email": "n@example.com", "password": "x"},
                             headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id
    lines = stack.log_lines(request_id, "gateway", "auth")
    assert any("gateway.1" in line for line in lines)
    assert any("auth.1" in line for line in lines)


def test_request_id_is_generated_when_missing_or_insane(stack):
    for headers in ({}, {"X-Request-ID": "has spaces and <html>"}):
        response = requests.get(f"{stack.url}/api/boards", headers=headers)
        assert len(response.headers["X-Request-ID"]) == 32
        assert "," not in response.headers["X-Request-ID"]  # one id, not the service's and nginx's


def test_body_over_one_mebibyte_is_a_413_problem(stack):
    response = requests.post(f"{stack.url}/api/boards", data=b"x" * (1024 * 1024 + 1),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/api/unknown", "/api/", "/api/authx", "/nothing.html"])
def test_unknown_paths_are_404_problems(stack, path):
    response = requests.get(f"{stack.url}{path}")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_405_problem(stack):
    response = requests.put(f"{stack.url}/api/boards")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_static_pages_have_security_headers(stack):
    response = requests.get(f"{stack.url}/")
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_jwks_is_reachable_through_the_gateway(stack):
    for path in ("/.well-known/jwks.json", "/api/auth/jwks.json"):
        keys = requests.get(f"{stack.url}{path}").json()["keys"]
        assert keys and all(k["use"] == "sig" for k in keys)


def test_gateway_health(stack):
    assert requests.get(f"{stack.url}/healthz").json() == {"status": "ok", "service": "gateway"}


def test_credential_endpoints_are_rate_limited_per_address(stack):
    def attempt(_):
        return requests.post(f"{stack.url}/api/auth/login", data="not json",
                             headers={"Content-Type": "application/json"})

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(attempt, range(400)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "no request was limited"
    assert all(r.json()["code"] == "too_many_requests" and r.headers["Retry-After"] for r in limited)
    assert {r.status_code for r in responses} <= {400, 429}


def test_a_stopped_service_is_a_502_problem_and_the_others_keep_working(tmp_path, keys_dir):
    env = {"APP_ENV": "test", "JWKS_PATH": str(keys_dir / "jwks.json"),
           "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
           "BOARD_DATABASE_URL": f"sqlite:///{tmp_path}/board.db"}
    profile = ServiceProcess("profile_service", env, tmp_path).start()
    board = ServiceProcess("board_service", env, tmp_path).start()
    gateway = GatewayProcess(tmp_path, {"auth": 9, "profile": profile.port, "board": board.port}).start()
    try:
        assert requests.get(f"{gateway.url}/api/boards").status_code == 200
        board.stop()
        down = requests.get(f"{gateway.url}/api/boards")
        assert down.status_code == 502
        assert down.headers["Content-Type"] == "application/problem+json"
        assert down.json()["code"] == "bad_gateway"
        assert json.loads(down.text)["status"] == 502
        assert requests.get(f"{gateway.url}/api/profiles/nobody").status_code == 404  # profile still answers
        assert requests.post(f"{gateway.url}/api/auth/login", json={}).json()["code"] == "bad_gateway"
    finally:
        gateway.stop()
        profile.stop()
        board.stop()


def test_large_bodies_under_the_limit_reach_the_service(stack):
    # Bodies past nginx's default 16 kB buffer once failed in the gateway (temp file permissions).
    response = requests.post(f"{stack.url}/api/auth/login", data=b'{"email": "' + b"a" * 900_000 + b'"}',
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
