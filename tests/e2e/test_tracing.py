"""Traces through the gateway, the stack started the `make run` way (2 gunicorn workers per service),
its spans exported by OTLP/HTTP to a receiver the test runs: a trace id sent in `traceparent` at the
gateway is in the service's log line, the gateway's, and the spans the receiver got."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from tests.support.otlp import OtlpReceiver, ReceivedSpan, call_untraced
from tests.support.stack import Stack

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("stack"),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
    ).start()
    yield running
    running.stop()


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


def _json_lines(stack: Stack) -> list[dict]:
    """Every JSON line of the stack's log (honcho puts `time name.n | ` before each)."""
    lines = []
    for text in stack.log().splitlines():
        start = text.find('{"ts"')
        if start >= 0:
            try:
                lines.append(json.loads(text[start:]))
            except ValueError:
                continue
    return lines


def _logged(stack: Stack, service: str, request_id: str) -> dict:
    """The access line `service` wrote for a request (the gateway's too), waiting for honcho to relay it
    (up to about 15 s: on a loaded machine the relay lags)."""
    for _ in range(300):
        found = [
            line
            for line in _json_lines(stack)
            if line.get("service") == service and line.get("request_id") == request_id and "status" in line
        ]
        if found:
            return found[-1]
        stack.log_lines(request_id, timeout=0.05)
    raise AssertionError(f"no {service} line for {request_id}")


def _signup_and_login(stack: Stack, email: str, **headers: str):
    status, _, _ = call_untraced(
        "POST", f"{stack.url}/api/auth/signup", {"email": email, "password": PASSWORD, "name": "Ada"}
    )
    assert status == 201
    return call_untraced("POST", f"{stack.url}/api/auth/login", {"email": email, "password": PASSWORD}, headers)


def _server_span(spans: list[ReceivedSpan], service: str) -> ReceivedSpan:
    [server] = [s for s in spans if s.service == service and s.parent_span_id and s.name.startswith(("GET", "POST"))]
    return server


def test_a_traceparent_sent_at_the_gateway_is_in_the_log_lines_and_the_exported_login_spans(stack, receiver):
    traceparent, trace_id, parent_id = _traceparent()

    status, headers, _ = _signup_and_login(stack, "traced@example.com", traceparent=traceparent)

    assert status == 200
    request_id = headers["X-Request-ID"]
    assert _logged(stack, "auth_service", request_id)["trace_id"] == trace_id
    assert _logged(stack, "gateway", request_id)["trace_id"] == trace_id
    spans = receiver.trace(trace_id, "password.verify", "POST /api/auth/login")
    server = _server_span(spans, "auth_service")
    assert server.name == "POST /api/auth/login"
    assert server.parent_span_id == parent_id  # the caller's span, passed on by the gateway
    [verify] = [s for s in spans if s.name == "password.verify"]
    assert verify.parent_span_id == server.span_id
    assert _logged(stack, "auth_service", request_id)["span_id"] == server.span_id


def test_a_refresh_through_the_gateway_shows_the_redis_script(stack, receiver):
    status, headers, body = _signup_and_login(stack, "refresher@example.com")
    assert status == 200
    cookie = next(c for c in headers.get_all("Set-Cookie") or [] if c.startswith("refresh_token="))
    traceparent, trace_id, _ = _traceparent()

    status, _, _ = call_untraced(
        "POST",
        f"{stack.url}/api/auth/refresh",
        headers={"Cookie": cookie.split(";", 1)[0], "traceparent": traceparent},
    )

    assert status == 200
    spans = receiver.trace(trace_id, "EVALSHA", "POST /api/auth/refresh")
    server = _server_span(spans, "auth_service")
    scripts = [s for s in spans if s.name == "EVALSHA"]
    assert scripts
    assert {s.parent_span_id for s in scripts} == {server.span_id}
    # No span of any service carries a password, a token or a cookie (Redis arguments are "?").
    exported = json.dumps([span.attributes for span in receiver.spans], default=str)
    refresh_token = cookie.split(";", 1)[0].split("=", 1)[1]
    for secret in (PASSWORD, body["access_token"], refresh_token, refresh_token.rsplit(".", 1)[-1]):
        assert secret not in exported


def test_without_a_traceparent_the_gateway_starts_the_trace(stack, receiver):
    status, headers, _ = call_untraced("GET", f"{stack.url}/api/boards?limit=1")

    assert status == 200
    request_id = headers["X-Request-ID"]
    trace_id = _logged(stack, "board_service", request_id)["trace_id"]
    # The gateway made the trace id from its own request id, and logged it.
    assert trace_id == request_id
    assert _logged(stack, "gateway", request_id)["trace_id"] == trace_id
    spans = receiver.trace(trace_id, "GET /api/boards")
    server = _server_span(spans, "board_service")
    assert server.parent_span_id == trace_id[16:]  # the gateway's parent span id: 16 hex digits
    assert int(server.parent_span_id, 16) != 0
    assert any(s.attributes.get("db.system") == "sqlite" for s in spans if s.parent_span_id == server.span_id)


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01",  # upper case is not W3C
        "00-" + "a" * 31 + "-" + "b" * 16 + "-01",
    ],
)
def test_a_malformed_traceparent_is_replaced_by_the_gateways(stack, bad):
    status, headers, _ = call_untraced("GET", f"{stack.url}/api/boards?limit=1", headers={"traceparent": bad})

    assert status == 200
    request_id = headers["X-Request-ID"]
    assert _logged(stack, "board_service", request_id)["trace_id"] == request_id
