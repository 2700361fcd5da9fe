"""Through the real gateway: a stopped service is a 502 problem for its own paths only."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import assert_problem, auth_env, post_with_cookie, resource_env, signup_and_login
from tests.support.stack import GatewayProcess


@pytest.fixture
def cluster(tmp_path: Path, keys_dir: Path, redis_url: str, launch, start_service):
    auth = start_service("auth_service", auth_env(tmp_path, keys_dir, redis_url))
    env = resource_env(tmp_path, keys_dir)
    profile = start_service("profile_service", env)
    board = start_service("board_service", env)
    gateway = launch(GatewayProcess(tmp_path, {"auth": auth.port, "profile": profile.port, "board": board.port}))
    return {"auth": auth, "profile": profile, "board": board, "gateway": gateway}


def assert_bad_gateway(response: requests.Response, request_id: str) -> None:
    body = assert_problem(response, 502, "bad_gateway")
    assert body["type"] == "urn:problem:bad_gateway" and body["title"] and body["detail"]
    assert response.headers["X-Request-ID"] == request_id
    assert "Set-Cookie" not in response.headers  # an outage never logs anybody out


def traced(request_id: str) -> dict[str, str]:
    return {"X-Request-ID": request_id}


def new_id() -> str:
    return f"fault-{uuid.uuid4().hex}"


def profile_calls(url: str, login) -> dict[str, requests.Response]:
    return {
        "my profile": requests.get(f"{url}/api/profiles/me", headers=login.bearer, timeout=10),
        "edit my profile": requests.patch(
            f"{url}/api/profiles/me", headers=login.bearer, json={"bio": "still here"}, timeout=10
        ),
    }


def board_calls(url: str, login) -> dict[str, requests.Response]:
    created = requests.post(f"{url}/api/boards", headers=login.bearer, json={"title": "t", "content": "c"}, timeout=10)
    return {"create post": created, "list posts": requests.get(f"{url}/api/boards", timeout=10)}


def test_auth_stopped_auth_paths_are_502_and_profile_and_board_serve_valid_tokens(cluster):
    gateway = cluster["gateway"]
    login = signup_and_login(gateway.url)
    cluster["auth"].stop()

    auth_calls = {
        "login": lambda h: requests.post(
            f"{gateway.url}/api/auth/login", headers=h, timeout=10, json={"email": login.email, "password": "whatever1"}
        ),
        "refresh": lambda h: requests.post(
            f"{gateway.url}/api/auth/refresh",
            timeout=10,
            headers={**h, "Cookie": f"refresh_token={login.refresh_token}"},
        ),
        "sessions": lambda h: requests.get(
            f"{gateway.url}/api/auth/sessions", headers={**h, **login.bearer}, timeout=10
        ),
        "jwks": lambda h: requests.get(f"{gateway.url}/.well-known/jwks.json", headers=h, timeout=10),
    }
    for call in auth_calls.values():
        request_id = new_id()
        assert_bad_gateway(call(traced(request_id)), request_id)

    for name, response in {**profile_calls(gateway.url, login), **board_calls(gateway.url, login)}.items():
        assert response.status_code in (200, 201), (name, response.status_code, response.text)
        assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("stopped", ["profile", "board"])
def test_a_stopped_resource_service_is_a_502_for_its_paths_only_and_comes_back(cluster, stopped):
    gateway = cluster["gateway"]
    login = signup_and_login(gateway.url)
    calls = {"profile": profile_calls, "board": board_calls}
    for responses in (calls["profile"](gateway.url, login), calls["board"](gateway.url, login)):
        assert all(r.ok for r in responses.values()), {n: r.status_code for n, r in responses.items()}

    cluster[stopped].stop()
    down = {
        "profile": [("GET", "/api/profiles/me"), ("PATCH", "/api/profiles/me"), ("GET", "/api/profiles/someone")],
        "board": [("GET", "/api/boards"), ("POST", "/api/boards"), ("GET", "/api/boards/" + "0" * 32)],
    }[stopped]
    for method, path in down:
        request_id = new_id()
        response = requests.request(
            method,
            f"{gateway.url}{path}",
            json={"title": "t", "content": "c"},
            headers={**login.bearer, **traced(request_id)},
            timeout=10,
        )
        assert_bad_gateway(response, request_id)
    # No request id sent: the gateway makes one, and still answers with a problem document.
    method, path = down[0]
    response = requests.request(method, f"{gateway.url}{path}", headers=login.bearer, timeout=10)
    assert_problem(response, 502, "bad_gateway")
    assert len(response.headers["X-Request-ID"]) == 32

    other = "board" if stopped == "profile" else "profile"
    for name, response in calls[other](gateway.url, login).items():
        assert response.status_code in (200, 201), (name, response.status_code, response.text)
    assert post_with_cookie(f"{gateway.url}/api/auth/refresh", login.refresh_token).status_code == 200

    cluster[stopped].start()  # same port: the gateway routes to it again without a reload
    for name, response in calls[stopped](gateway.url, login).items():
        assert response.status_code in (200, 201), (name, response.status_code, response.text)


def test_a_stopped_replica_costs_one_502_and_the_other_replica_serves_the_rest(
    tmp_path: Path, keys_dir: Path, redis_url: str, launch, start_service
):
    env = auth_env(tmp_path, keys_dir, redis_url)
    replicas = [start_service("auth_service", env), start_service("auth_service", env)]
    # Profile and board are not asked: port 9 refuses.
    gateway = launch(GatewayProcess(tmp_path, {"auth": [r.port for r in replicas], "profile": 9, "board": 9}))
    http = requests.Session()  # one client connection: one nginx worker, which keeps its own view of the replicas
    assert [http.get(f"{gateway.url}/.well-known/jwks.json", timeout=10).status_code for _ in range(4)] == [200] * 4

    replicas[1].stop()
    statuses = [http.get(f"{gateway.url}/.well-known/jwks.json", timeout=10).status_code for _ in range(20)]
    # The request nginx sent to the stopped replica is not resent (proxy_next_upstream off); after
    # it, nginx skips that replica and the other answers everything.
    assert statuses.count(502) <= 1 and statuses.count(200) == len(statuses) - statuses.count(502), statuses
