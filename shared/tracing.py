"""OpenTelemetry traces: one tracer provider per process, the official instrumentations, W3C context.

Every service instruments its Flask app, its SQLAlchemy engine, Redis (auth's client and the
revocation feed's) and requests (the JWKS fetch) through `instrument_service()`, at app creation.
The tracer provider, which owns the exporter's thread, is made by `start_tracing()`: under gunicorn
in each worker after the fork (gunicorn.conf.py's `post_fork`), never in the master; elsewhere
(tests, `flask run`) once, when the first app is created. Spans made before it exists go nowhere.

Configuration is OpenTelemetry's own environment variables:

- `OTEL_SDK_DISABLED=true`: no provider and no instrumentation at all (what the bench compares to).
- `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: spans go there by OTLP over
  HTTP (protobuf), in batches (`OTEL_BSP_*`); `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`,
  `..._COMPRESSION`, `..._CERTIFICATE` and their `_TRACES_` forms are read by the exporter. Unset:
  no exporter and no connection is ever attempted, and no span is made: each request only gets
  trace ids (the caller's `traceparent` continued, or a new trace) for its log lines.
  `OTEL_TRACES_EXPORTER=none` turns the exporter off with an endpoint set.
- `OTEL_SERVICE_NAME` (default: the service, e.g. `auth_service`), `OTEL_RESOURCE_ATTRIBUTES`,
  `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`),
  `OTEL_PROPAGATORS` (default `tracecontext,baggage`: a `traceparent` header continues its trace).
- `OTEL_PYTHON_FLASK_EXCLUDED_URLS`: requests not traced (default: `/healthz`, `/readyz`, `/metrics`).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from sqlalchemy import Engine

# Probes and scrapes are frequent and say nothing about a user's request: not traced by default.
DEFAULT_EXCLUDED_URLS = r"^[a-z]+://[^/]+/(healthz|readyz|metrics)/?(\?.*)?$"
TRACES_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class _ProcessState:
    """What this process has set up; a forked worker inherits it and starts its own provider."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started_in: int | None = None  # the process the provider was made in
        self.in_workers = False
        self.clients_instrumented = False
        self.traced_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self.sampler: RecordedWhenExported | None = None


_state = _ProcessState()


def tracing_enabled() -> bool:
    """False when `OTEL_SDK_DISABLED` is true: then nothing is traced or instrumented."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def exporter_endpoint() -> str | None:
    """The OTLP endpoint spans are sent to, or None: no exporter (the default)."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    for variable in TRACES_ENDPOINT_VARIABLES:
        if value := os.environ.get(variable, "").strip():
            return value
    return None


def start_in_workers() -> None:
    """Leave the provider to `start_tracing()` in each worker: called where gunicorn reads its
    config, in the master, so that an app created there (preloaded) makes no exporter thread."""
    _state.in_workers = True


def start_tracing(service: str) -> TracerProvider | None:
    """Make this process's tracer provider, once, and make it the global one; None when disabled."""
    if not tracing_enabled():
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _state.lock:
        current = trace.get_tracer_provider()
        if _state.started_in == os.getpid() and isinstance(current, TracerProvider):
            return current
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the service's own
        # name applies only where neither names one.
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: service}))
        # What TracerProvider() would read from OTEL_TRACES_SAMPLER and _ARG (default parentbased_always_on).
        sampler = RecordedWhenExported(sampling._get_from_env_or_default())
        provider = TracerProvider(resource=resource, sampler=sampler)
        endpoint = exporter_endpoint()
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # The exporter reads the endpoint, headers, timeout and TLS settings from OTEL_* itself.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            sampler.exported = True
        _state.sampler = sampler
        # Set once per process: the gunicorn master never sets one, so each worker sets its own.
        trace.set_tracer_provider(provider)
        _state.started_in = os.getpid()
        return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Send this process's spans to `processor` too (an in-memory exporter in tests), and record them
    from now on, as with an exporter; apps made after this call trace their SQL, Redis and requests too."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider) or _state.sampler is None:
        raise RuntimeError("tracing is not started in this process (OTEL_SDK_DISABLED?)")
    provider.add_span_processor(processor)
    _state.sampler.exported = True


class RecordedWhenExported(Sampler):
    """OTEL_TRACES_SAMPLER's sampler while spans go somewhere; until then every span is dropped at its
    start. A dropped span still has its trace and span ids, so log lines name them and a traceparent
    still carries the caller's trace on, but the instrumentations skip their attribute work, which
    nobody would read (README, Traces: what tracing costs)."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.exported = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if self.exported:
            return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, parent.trace_state if parent.is_valid else None)

    def get_description(self) -> str:
        return f"RecordedWhenExported{{{self.inner.get_description()}}}"


def instrument_service(app: Flask, service: str, *, engine: Engine | None = None) -> None:
    """Trace the app's requests and its engine's statements, Redis commands and outgoing requests
    when spans go somewhere; without an exporter, only give each request its trace ids. Start the
    provider now unless gunicorn starts it in each worker. Nothing when disabled."""
    if not tracing_enabled():
        return
    if not _state.in_workers:
        # First, so the instrumentations get the provider's tracers, not proxies that look it up per span.
        start_tracing(service)
    if exporter_endpoint() is None and not (_state.sampler is not None and _state.sampler.exported):
        # Spans nobody reads would cost a quarter of a short request (the Flask instrumentation's
        # own work, recorded or not: `make bench` row 9); the log lines still name the trace.
        _trace_ids_without_spans(app)
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
        app, excluded_urls=os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    )
    if engine is not None:
        trace_engine(engine)
    _instrument_clients()


def _trace_ids_without_spans(app: Flask) -> None:
    """Each request runs in a span context that is not recorded: the caller's trace continued (the
    W3C `traceparent`, read by OpenTelemetry's propagator) or a new one, with a span id of its own,
    so its log lines carry `trace_id` and `span_id` as when spans are exported."""
    from flask import g, request
    from opentelemetry import context, propagate
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    ids = RandomIdGenerator()

    @app.before_request
    def _enter_trace() -> None:
        parent = trace.get_current_span(propagate.extract(request.headers)).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
        span = NonRecordingSpan(SpanContext(trace_id, ids.generate_span_id(), False, TraceFlags(0)))
        g.trace_context_token = context.attach(trace.set_span_in_context(span))

    @app.teardown_request
    def _leave_trace(_error: BaseException | None) -> None:
        token = g.pop("trace_context_token", None)
        if token is not None:
            context.detach(token)


def trace_engine(engine: Engine) -> None:
    """Give each statement on `engine` a span (once per engine)."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import get_meter

    with _state.lock:
        if engine in _state.traced_engines:
            return
        # What SQLAlchemyInstrumentor().instrument(engine=...) does, which works for the first engine only.
        meter = get_meter("opentelemetry.instrumentation.sqlalchemy", __version__)
        usage = meter.create_up_down_counter("db.client.connections.usage", unit="connections")
        tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
        EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
        _state.traced_engines.add(engine)


def _instrument_clients() -> None:
    """Redis commands of every client (any topology, pipelines too) and requests' calls, once."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    with _state.lock:
        if _state.clients_instrumented:  # the patched classes come along into forked workers too
            return
        RedisInstrumentor().instrument()
        RequestsInstrumentor().instrument()
        _state.clients_instrumented = True


def current_trace_ids() -> tuple[str, str] | None:
    """The current span's trace id (32 hex) and span id (16 hex), or None outside a valid span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
