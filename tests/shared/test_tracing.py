"""Traces (shared/tracing.py): spans of a login and a refresh, trace ids in log lines, W3C traceparent,
the exporter off by default, OTEL_SDK_DISABLED, and a provider per gunicorn worker made after the fork."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from auth_service import create_app
from auth_service.config import AuthConfig
from auth_service.context import AuthContext
from auth_service.migrations import HISTORY
from shared.request_log import JsonFormatter
from shared.tracing import add_span_processor, start_tracing
from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.otlp import OtlpReceiver
from tests.support.processes import REPO, ServiceProcess
from tests.support.schemas import migrate
from tests.support.workers import _access_lines, answers_from_every_worker

pytestmark = pytest.mark.servers  # a real Redis, and gunicorn processes


class SpanRecorder(SpanProcessor):
    """Keeps the spans that end while a test listens (the provider is the process's, shared by tests)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.listening = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.listening:
            self.exporter.export([span])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture(scope="session")
def recorder() -> SpanRecorder:
    start_tracing("tests")  # unless an app of an earlier test started it
    processor = SpanRecorder()
    add_span_processor(processor)
    return processor


@pytest.fixture
def spans(recorder: SpanRecorder) -> Iterator[SpanRecorder]:
    recorder.exporter.clear()
    recorder.listening = True
    yield recorder
    recorder.listening = False
    recorder.exporter.clear()


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, object]]]:
    """The access log's JSON lines, formatted as the services format them."""
    lines: list[dict[str, object]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter("auth_service").format(record)))

    handler = Keep()
    logging.getLogger("access").addHandler(handler)
    yield lines
    logging.getLogger("access").removeHandler(handler)


def _auth_settings(tmp_path: Path, redis_url: str, keys_dir: Path) -> dict[str, object]:
    return {
        "app_env": "test",
        "database_url": f"sqlite:///{tmp_path / 'auth.db'}",
        "redis_url": redis_url,
        "signing_key_path": keys_dir / "signing.pem",
        "refresh_key_path": keys_dir / "refresh.key",
        "jwks_path": keys_dir / "jwks.json",
        **CHEAP_ARGON2,
    }


@pytest.fixture
def auth_app(recorder: SpanRecorder, tmp_path: Path, standalone_redis_url: str, keys_dir: Path) -> Iterator[Flask]:
    settings = _auth_settings(tmp_path, standalone_redis_url, keys_dir)
    migrate(str(settings["database_url"]), HISTORY)
    app = create_app(AuthConfig(**settings))  # type: ignore[arg-type]
    yield app
    AuthContext.of(app).engine.dispose()


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


def _signup(client, email: str = "ada@example.com") -> None:
    response = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert response.status_code == 201


def _server_span(found: list[ReadableSpan], trace_id: str) -> ReadableSpan:
    [server] = [s for s in found if s.kind == trace.SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id]
    return server


def test_a_login_continues_the_callers_trace_and_shows_the_password_hash_as_its_own_span(auth_app, spans, log_lines):
    client = auth_app.test_client()
    _signup(client)
    traceparent, trace_id, parent_id = _traceparent()

    response = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}, headers={"traceparent": traceparent}
    )

    assert response.status_code == 200
    found = spans.spans()
    server = _server_span(found, trace_id)
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    [verify] = [s for s in found if s.name == "password.verify"]
    assert verify.context.trace_id == server.context.trace_id
    assert verify.parent is not None and verify.parent.span_id == server.context.span_id
    # The log line of that request names the trace and the request's span.
    [line] = [line for line in log_lines if line["path"] == "/api/auth/login"]
    assert line["trace_id"] == trace_id
    assert line["span_id"] == format(server.context.span_id, "016x")
    # The span carries neither the password nor the email.
    for span in found:
        assert PASSWORD not in json.dumps(dict(span.attributes or {}), default=str)


def test_a_refresh_trace_shows_the_redis_script(auth_app, spans):
    client = auth_app.test_client()
    _signup(client)
    login = client.post("/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 200
    traceparent, trace_id, _ = _traceparent()

    assert client.post("/api/auth/refresh", headers={"traceparent": traceparent}).status_code == 200

    found = [s for s in spans.spans() if format(s.context.trace_id, "032x") == trace_id]
    server = _server_span(found, trace_id)
    scripts = [s for s in found if s.name == "EVALSHA"]
    assert scripts, sorted(s.name for s in found)
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in scripts)
    assert all(s.kind == trace.SpanKind.CLIENT for s in scripts)


def test_a_request_without_traceparent_starts_a_trace_and_its_log_line_names_it(auth_app, spans, log_lines):
    client = auth_app.test_client()

    assert client.get("/.well-known/jwks.json").status_code == 200

    [line] = [line for line in log_lines if line["path"] == "/.well-known/jwks.json"]
    [server] = [s for s in spans.spans() if s.kind == trace.SpanKind.SERVER]
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert len(str(line["trace_id"])) == 32 and int(str(line["trace_id"]), 16)


def test_health_probes_are_not_traced(auth_app, spans, log_lines):
    client = auth_app.test_client()

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200

    assert [s for s in spans.spans() if s.kind == trace.SpanKind.SERVER] == []
    assert all("trace_id" not in line for line in log_lines)


def test_sql_statements_are_spans_of_the_request(auth_app, spans):
    client = auth_app.test_client()
    traceparent, trace_id, _ = _traceparent()

    response = client.post(
        "/api/auth/signup",
        json={"email": "sql@example.com", "password": PASSWORD, "name": "Sql"},
        headers={"traceparent": traceparent},
    )

    assert response.status_code == 201
    found = [s for s in spans.spans() if format(s.context.trace_id, "032x") == trace_id]
    assert any((s.attributes or {}).get("db.system") == "sqlite" for s in found), [s.name for s in found]
    assert any(s.name == "password.hash" for s in found)


# What a process outside gunicorn makes of the settings: the threads it runs and the ids it logs.
PROBE = """
import json, logging, sys, threading
from flask import Flask
from opentelemetry import trace
from shared.request_log import JsonFormatter
from shared.tracing import instrument_service
app = Flask("probe")
instrument_service(app, "probe")
@app.get("/work")
def work():
    with trace.get_tracer("probe").start_as_current_span("inner") as span:
        record = logging.LogRecord("access", logging.INFO, "", 0, "request", None, None)
        return json.dumps({**json.loads(JsonFormatter("probe").format(record)), "recording": span.is_recording()})
line = json.loads(app.test_client().get("/work", headers={"traceparent": sys.argv[1]}).get_data(as_text=True))
provider = trace.get_tracer_provider()
print(json.dumps({
    "line": line,
    "provider": type(provider).__name__,
    "threads": sorted(t.name for t in threading.enumerate()),
}))
"""


def _probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    traceparent, trace_id, _ = _traceparent()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, traceparent],
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {**json.loads(done.stdout.splitlines()[-1]), "sent_trace_id": trace_id}


def test_the_exporter_is_off_by_default_and_on_with_an_endpoint():
    # No endpoint: spans have ids (the log line names them) but are not recorded, and there is no
    # exporter thread to send them.
    off = _probe()
    assert off["provider"] == "TracerProvider"
    assert off["line"]["trace_id"] == off["sent_trace_id"]  # the caller's trace, continued
    assert off["line"]["recording"] is False
    assert not [name for name in off["threads"] if name.startswith("OtelBatch")]
    # With an endpoint, a batch exporter runs (nothing listens there; its failures are its own).
    on = _probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_BSP_SCHEDULE_DELAY="60000")
    assert [name for name in on["threads"] if name.startswith("OtelBatch")]
    assert on["line"]["recording"] is True


def test_otel_sdk_disabled_makes_no_spans_and_no_trace_ids():
    disabled = _probe(OTEL_SDK_DISABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")

    assert disabled["provider"] != "TracerProvider"
    assert "trace_id" not in disabled["line"] and "span_id" not in disabled["line"]
    assert not [name for name in disabled["threads"] if name.startswith("OtelBatch")]


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _auth_env(tmp_path: Path, redis_url: str, keys_dir: Path, **extra: str) -> dict[str, str]:
    settings = _auth_settings(tmp_path, redis_url, keys_dir)
    env = {key.upper(): str(value) for key, value in settings.items()}
    return {**env, "AUTH_DATABASE_URL": env.pop("DATABASE_URL"), **extra}


def test_each_gunicorn_worker_exports_its_spans_and_the_master_runs_no_exporter(
    tmp_path: Path, standalone_redis_url: str, keys_dir: Path
):
    with OtlpReceiver() as receiver:
        env = _auth_env(
            tmp_path,
            standalone_redis_url,
            keys_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        process = ServiceProcess("auth_service", env, tmp_path, workers=2, threads=1).start()
        try:
            by_pid = answers_from_every_worker("GET", f"{process.url}/.well-known/jwks.json", {}, process.log)
            assert process.process is not None
            master_threads = _threads(process.process.pid)
        finally:
            process.stop()
        # Each request's log line names a trace, and that trace reached the receiver, from both workers.
        logged = _access_lines(process.log())
        for responses in by_pid.values():
            for response in responses:
                trace_id = logged[response.headers["X-Request-ID"]]["trace_id"]
                [span] = receiver.trace(trace_id)
                assert span.service == "auth_service"
                assert span.name == "GET /.well-known/jwks.json"
    # The master made no tracer provider, so no exporter thread: it runs the threads it runs with
    # tracing off (gunicorn's own).
    untraced = ServiceProcess(
        "auth_service",
        _auth_env(tmp_path, standalone_redis_url, keys_dir, OTEL_SDK_DISABLED="true"),
        tmp_path,
        workers=1,
    ).start()
    try:
        assert untraced.process is not None
        assert master_threads == _threads(untraced.process.pid)
    finally:
        untraced.stop()
