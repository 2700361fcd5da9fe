"""The gateway's own behaviour: request ids, limits, problem documents, headers, routing."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.processes import ServiceProcess
from tests.support.raw_http import exchange
from tests.support.stack import GatewayProcess


def test_request_id_travels_through_every_log(stack):
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = requests.post(
        f"{stack.url}/api/auth/login",
        json={"email": "n@example.com", "password": "x"},
        headers={"X-Request-ID": request_id},
    )
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
    response = requests.post(
        f"{stack.url}/api/boards", data=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/api/unknown", "/api/", "/api/authx", "/nothing.html", "/api/auth", "/css/", "/js/"])
def test_unknown_paths_are_404_problems(stack, path):
    # Never a redirect or an HTML page: `/api/auth` was a 301 to `/api/auth/`, a directory a 403 page.
    response = requests.get(f"{stack.url}{path}", allow_redirects=False)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_405_problem(stack):
    response = requests.put(f"{stack.url}/api/boards")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(("method", "path"), [("POST", "/"), ("DELETE", "/index.html"), ("POST", "/healthz")])
def test_the_gateways_own_405s_name_the_methods_allowed(stack, method, path):
    # RFC 9110 section 15.5.6: a 405 carries Allow. The gateway's health check answered any method.
    response = requests.request(method, f"{stack.url}{path}")
    assert response.status_code == 405, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


def test_trace_which_nginx_refuses_itself_names_the_same_methods_as_the_service(stack):
    # nginx refuses TRACE before choosing a location; its Allow must still be the route's own.
    checked = 0
    for service in ("auth", "profile", "board"):
        document = requests.get(f"{stack.service_url(service)}/openapi.json", timeout=5).json()
        for path in document["paths"]:
            concrete = re.sub(r"\{[^}]+\}", "some-id", path)
            own = requests.request("TRACE", f"{stack.service_url(service)}{concrete}", timeout=5)
            through = requests.request("TRACE", f"{stack.url}{concrete}", timeout=5)
            assert own.status_code == through.status_code == 405, (path, through.text)
            assert through.json()["code"] == "method_not_allowed"
            allowed = {method.strip() for method in through.headers["Allow"].split(",")}
            assert allowed == {method.strip() for method in own.headers["Allow"].split(",")}, path
            checked += 1
    assert checked >= 10
    unknown = requests.request("TRACE", f"{stack.url}/api/nothing/here", timeout=5)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


def _bearer(stack) -> dict[str, str]:
    email = f"gw-{uuid.uuid4().hex[:8]}@example.com"
    account = {"email": email, "password": "correct horse battery"}
    requests.post(f"{stack.url}/api/auth/signup", json={**account, "name": "G"}, timeout=10)
    login = requests.post(f"{stack.url}/api/auth/login", json=account, timeout=10)
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_the_gateways_own_answers_to_credentials_and_under_api_auth_are_never_stored(stack):
    # docs/API.md: every answer to a request with credentials, and every /api/auth answer but the
    # JWKS, has Cache-Control: no-store; nginx's own problem documents included.
    too_big = b"x" * (1024 * 1024 + 1)
    json_type = {"Content-Type": "application/json"}
    bearer = _bearer(stack)
    answers = {
        "413 at login": requests.post(f"{stack.url}/api/auth/login", data=too_big, headers=json_type),
        "413 with a token": requests.post(f"{stack.url}/api/boards", data=too_big, headers={**json_type, **bearer}),
        "404 with a token": requests.get(f"{stack.url}/api/unknown", headers=bearer),
        "404 with a cookie": requests.get(f"{stack.url}/api/auth", headers={"Cookie": "refresh_token=x"}),
        "405 with a token": requests.request("TRACE", f"{stack.url}/api/profiles/me", headers=bearer),
    }
    for name, response in answers.items():
        assert response.headers["Content-Type"] == "application/problem+json", name
        assert response.headers.get("Cache-Control") == "no-store", name
        assert len(response.headers["X-Request-ID"]) == 32, name
    # What is the same for everyone keeps its own policy, credentials or not (docs/API.md).
    with_cookie = {"Cookie": "refresh_token=x", **bearer}
    for path, policy in (("/api/auth/jwks.json", "public, max-age=300"), ("/", "no-cache")):
        assert requests.get(f"{stack.url}{path}", headers=with_cookie).headers["Cache-Control"] == policy, path


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
        return requests.post(
            f"{stack.url}/api/auth/login", data="not json", headers={"Content-Type": "application/json"}
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(attempt, range(400)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "no request was limited"
    assert all(r.json()["code"] == "too_many_requests" and r.headers["Retry-After"] for r in limited)
    assert all(r.headers.get("Cache-Control") == "no-store" for r in limited)  # an /api/auth answer
    assert {r.status_code for r in responses} <= {400, 429}


def test_a_stopped_service_is_a_502_problem_and_the_others_keep_working(tmp_path, keys_dir):
    env = {
        "APP_ENV": "test",
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
        "BOARD_DATABASE_URL": f"sqlite:///{tmp_path}/board.db",
    }
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
        login = requests.post(f"{gateway.url}/api/auth/login", json={})
        assert login.json()["code"] == "bad_gateway"
        assert login.headers.get("Cache-Control") == "no-store"  # an /api/auth answer
    finally:
        gateway.stop()
        profile.stop()
        board.stop()


def test_large_bodies_under_the_limit_reach_the_service(stack):
    # Bodies past nginx's default 16 kB buffer once failed in the gateway (temp file permissions).
    response = requests.post(
        f"{stack.url}/api/auth/login",
        data=b'{"email": "' + b"a" * 900_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


# Sent in every malformed request below: no answer may carry it back.
MARKER = b"<script>edge-marker</script>"


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert got_status == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["type"], problem["status"], problem["code"]) == (f"urn:problem:{code}", status, code)
    assert problem["title"] and problem["detail"]
    assert b"<html" not in body.lower() and MARKER not in body


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


HOST = b"Host: localhost\r\nConnection: close\r\n"
POST = b"POST /api/auth/login HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
NGINX_REFUSALS = {
    "header over the buffers": (
        b"GET /api/boards HTTP/1.1\r\n" + HOST + b"X-Big: " + MARKER + b"a" * 20000 + b"\r\n\r\n",
        431,
        "request_header_too_large",
    ),
    "cookie over the buffers": (
        b"GET /api/boards HTTP/1.1\r\n" + HOST + b"Cookie: a=" + MARKER + b"a" * 9000 + b"\r\n\r\n",
        431,
        "request_header_too_large",
    ),
    "URI over the buffers": (
        b"GET /api/boards?" + MARKER + b"a" * 20000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        414,
        "uri_too_long",
    ),
    "NUL in the path": (b"GET /api/%00" + MARKER + b" HTTP/1.1\r\n" + HOST + b"\r\n", 400, "bad_request"),
    "garbage request line": (MARKER + b"\r\n" + HOST + b"\r\n", 400, "bad_request"),
    "bad method": (b"G<T /api/boards HTTP/1.1\r\n" + HOST + b"\r\n", 400, "bad_request"),
    "HTTP/1.1 without Host": (b"GET /api/boards HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    "two Host headers": (b"GET /api/boards HTTP/1.1\r\n" + HOST + b"Host: evil.example\r\n\r\n", 400, "bad_request"),
    "unknown HTTP version": (b"GET /api/boards HTTP/9.9\r\n" + HOST + b"\r\n", 505, "http_version_not_supported"),
    "gzip, chunked": (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not_implemented"),
    "identity": (POST + b"Transfer-Encoding: identity\r\n\r\n", 501, "not_implemented"),
    "unknown transfer coding": (POST + b"Transfer-Encoding: " + MARKER + b"\r\n\r\n", 501, "not_implemented"),
    "bad chunk size": (
        POST + b"Transfer-Encoding: chunked\r\n\r\nzz" + MARKER + b"\r\n{}\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "Content-Length and chunked": (
        POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "bad Content-Length": (POST + b"Content-Length: " + MARKER + b"\r\n\r\n", 400, "bad_request"),
    "chunked body over 1 MiB": (
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"{}" + b" " * (1024 * 1024 + 1000)),
        413,
        "payload_too_large",
    ),
}


@pytest.mark.parametrize("name", NGINX_REFUSALS)
def test_requests_nginx_refuses_are_problem_documents(stack, name):
    data, status, code = NGINX_REFUSALS[name]
    answer = exchange(stack.ports["gateway"], data)
    assert_problem(answer, status, code)
    assert len(answer[1]["x-request-id"]) == 32


@pytest.mark.parametrize(
    "path",
    ["/css", "/js/views", "//api/boards", "/api/boards//x", "/index.html/", "/api//auth/jwks.json", "/css/../js"],
)
def test_no_redirect_names_a_forged_host(stack, path):
    status, headers, _ = exchange(
        stack.ports["gateway"], f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
    )
    location = headers.get("location", "")
    assert "evil.example" not in location, (status, location)
    if location.startswith(("http:", "https:", "//")):
        assert f":{stack.ports['gateway']}/" in location, location


def test_a_directory_without_its_slash_redirects_to_a_relative_path(stack):
    status, headers, _ = exchange(
        stack.ports["gateway"], b"GET /css HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert (status, headers["location"]) == (301, "/css/")


@pytest.mark.parametrize("service", ["auth", "profile", "board"])
def test_services_run_the_make_run_way_answer_their_own_refusals_as_problems(stack, service):
    # Straight to gunicorn, configured by gunicorn.conf.py as `make run` and compose run it.
    port = stack.ports[service]
    assert_problem(
        exchange(port, b"GET /" + MARKER + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414, "uri_too_long"
    )
    assert_problem(exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + MARKER + b": 1\r\n\r\n"), 400, "bad_request")


def test_a_chunked_signup_over_the_limit_sent_straight_to_auth_is_413_and_creates_nothing(stack):
    account = {
        "email": f"chunked-{uuid.uuid4().hex}@example.com",
        "password": "correct horse battery",
        "name": "Chunked",
    }
    # Valid JSON padded with whitespace: cut at 1 MiB it would still parse and sign the account up.
    document = json.dumps(account).encode()
    body = document + b" " * (1024 * 1024 + 1000 - len(document))
    request = (
        b"POST /api/auth/signup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body)
    )
    assert_problem(exchange(stack.ports["auth"], request), 413, "payload_too_large")
    assert requests.post(f"{stack.url}/api/auth/signup", json=account).status_code == 201  # not email_taken


def test_a_dpop_header_the_http_servers_find_too_large_is_431_before_auth_sees_it(stack):
    # docs/API.md: a proof may have up to 8192 characters, but a header line of 8 kB (name and all)
    # is refused first, by nginx here and gunicorn behind it: 431, never a 500 or a proof check.
    def login_with(proof: str) -> requests.Response:
        return requests.post(f"{stack.url}/api/auth/login", json={}, headers={"DPoP": proof}, timeout=10)

    checked = login_with("a" * 8000)
    assert (checked.status_code, checked.json()["code"]) == (401, "invalid_dpop_proof")
    for length in (8186, 8192, 8193):
        refused = login_with("a" * length)
        assert (refused.status_code, refused.json()["code"]) == (431, "request_header_too_large"), length
