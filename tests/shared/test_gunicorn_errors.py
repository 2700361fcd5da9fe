"""A service called straight, without the gateway: gunicorn's own refusals and chunked bodies."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.processes import ServiceProcess
from tests.support.raw_http import exchange

pytestmark = pytest.mark.servers  # starts processes of its own

LIMIT = 1024 * 1024
# Sent in every bad request: an answer must never carry it back.
MARKER = "<script>edge-marker</script>"


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == code and problem["status"] == expected_status
    assert problem["type"] == f"urn:problem:{code}" and problem["title"] and problem["detail"]
    assert b"<html" not in body.lower() and MARKER.encode() not in body


@pytest.fixture(scope="module", params=["sync", "gthread"])
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys_dir: Path):
    directory = tmp_path_factory.mktemp("board")
    env = {
        "APP_ENV": "test",
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        "BOARD_DATABASE_URL": f"sqlite:///{directory / 'board.db'}",
    }
    threads = 4 if request.param == "gthread" else 1
    process = ServiceProcess(
        "board_service", env, directory, workers=1, threads=threads, worker_class=request.param
    ).start()
    yield process
    process.stop()


def post_board(token: str, extra_headers: bytes) -> bytes:
    return (
        b"POST /api/boards HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer " + token.encode() + b"\r\n" + extra_headers
    )


M = MARKER.encode()
REFUSALS = {
    "request line over the limit": (b"GET /" + M + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    "too many header fields": (
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, M) for i in range(120)) + b"\r\n",
        431,
        "request_header_too_large",
    ),
    "header field over the limit": (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + M + b"a" * 9000 + b"\r\n\r\n",
        431,
        "request_header_too_large",
    ),
    "invalid header name": (b"GET / HTTP/1.1\r\nHost: x\r\n" + M + b": 1\r\n\r\n", 400, "bad_request"),
    "bad HTTP version": (b"GET /" + M + b" HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "garbage request line": (M + b"\r\n\r\n", 400, "bad_request"),
    "unknown transfer coding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + M + b"\r\n\r\n",
        501,
        "not_implemented",
    ),
    "identity transfer coding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        400,
        "bad_request",
    ),
    "Content-Length and chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    # RFC 9112 section 3.2: an HTTP/1.1 request without Host is a 400 (gunicorn served it).
    "HTTP/1.1 without Host": (b"GET /api/boards?" + M + b" HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    "HTTP/1.1 without Host to no route": (b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    "unmet Expect": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: " + M + b"\r\n\r\n",
        417,
        "expectation_failed",
    ),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_requests_gunicorn_refuses_are_problem_documents(board, name):
    # (Some are refused by the app, not gunicorn: the same worker, the same problem documents.)
    data, status, code = REFUSALS[name]
    assert_problem(*exchange(board.port, data), status, code)
    assert MARKER not in board.log()  # the log names the error, never the input


def test_http_1_0_needs_no_host(board):
    status, _, _ = exchange(board.port, b"GET /api/boards HTTP/1.0\r\n\r\n")
    assert status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"zz" + M + b"\r\n{}\r\n0\r\n\r\n",
        b"-1\r\n{}\r\n0\r\n\r\n",
        b"2\r\n{}" + M + b"0\r\n\r\n",
        b"2;" + M + b"\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["not hex", "negative", "no terminator", "bad extension"],
)
def test_a_malformed_chunked_body_is_a_400_problem(board, tokens, body):
    data = post_board(tokens.make(), b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert_problem(*exchange(board.port, data), 400, "bad_request")


def test_a_chunked_body_over_the_limit_is_413_never_cut_short(board, tokens):
    title = f"cut-{uuid.uuid4().hex}"
    # Valid JSON padded with whitespace: cut at the limit it would still parse and be stored.
    document = json.dumps({"title": title, "content": "c"}).encode()
    too_long = document + b" " * (LIMIT + 1000 - len(document))
    status, headers, body = exchange(
        board.port, post_board(tokens.make(), b"Transfer-Encoding: chunked\r\n\r\n" + chunked(too_long))
    )
    assert_problem(status, headers, body, 413, "payload_too_large")
    assert title not in requests.get(f"{board.url}/api/boards?limit=100").text

    just_fits = document + b" " * (LIMIT - len(document))
    status, _, body = exchange(
        board.port, post_board(tokens.make(), b"Transfer-Encoding: chunked\r\n\r\n" + chunked(just_fits))
    )
    assert status == 201 and json.loads(body)["title"] == title
