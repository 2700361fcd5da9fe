"""Wire a Flask app the same way in every service: errors, request log, limits, health, OpenAPI."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping

from flask import Flask, Response, jsonify, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from shared.database import DATABASE_UNAVAILABLE_ERRORS, ping
from shared.metrics import ServiceMetrics, install_metrics
from shared.openapi import openapi_document
from shared.problems import ErrorTable, Problem, register_error_handlers
from shared.request_log import configure_logging, install_request_log
from shared.revocations import RevocationFeed
from shared.service_context import DatabaseServiceContext, ServiceContext
from shared.tracing import instrument_service
from shared.trusted_proxies import TrustedProxyFix

# A readiness check returns None when its dependency is usable, else a short reason.
ReadinessCheck = Callable[[], str | None]
REVOCATION_FEED_EXTENSION = "revocation_feed"


def create_service_app(
    service: str,
    context: ServiceContext,
    *,
    readiness_checks: Mapping[str, ReadinessCheck],
    unavailable_errors: Iterable[type[BaseException]] = (),
    domain_errors: ErrorTable | None = None,
    readiness_details: Mapping[str, Callable[[], object]] | None = None,
    metrics: ServiceMetrics | None = None,
) -> Flask:
    """Return a Flask app with the infrastructure every service has and `context` attached; the
    caller adds blueprints."""
    config = context.config
    configure_logging(service, config.log_level)
    app = Flask(service)
    app.config.update(MAX_CONTENT_LENGTH=config.max_body_bytes, JSON_SORT_KEYS=False, TRAP_HTTP_EXCEPTIONS=False)
    # Flask's default provider has these; its base class (what app.json is typed as) does not.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    # werkzeug would answer `//` in a path with a redirect built from the client's Host header.
    app.url_map.merge_slashes = False
    context.attach(app)
    # First, so that its span is current in every hook after it; inside the proxy fix below, so it sees
    # the client's address.
    instrument_service(app, service, engine=context.engine if isinstance(context, DatabaseServiceContext) else None)
    if config.trusted_proxy_hops:
        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, hops=config.trusted_proxy_hops, networks=config.trusted_proxies
        )
    install_request_log(app)
    if config.metrics_enabled:
        metrics = metrics or ServiceMetrics(service)
        install_metrics(app, metrics)
        context.verifier.report_to(metrics)
    app.before_request(_host_required)
    app.before_request(_whole_streamed_body)
    register_error_handlers(app, unavailable_errors=unavailable_errors, domain_errors=domain_errors)

    @app.after_request
    def _personal_answers_are_not_stored(response: Response) -> Response:
        # An answer to a request with credentials may be about that person: no cache, shared or
        # the browser's, keeps it. Routes that know better set their own Cache-Control.
        if ("Authorization" in request.headers or request.cookies) and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def _no_type_without_content(response: Response) -> Response:
        # A 204 and Flask's own OPTIONS answer have no body, so no media type either (Flask labels
        # every response text/html by default; RFC 9110 section 8.3 is about content that is there).
        empty_options = request.method == "OPTIONS" and not response.is_streamed and not response.get_data()
        if response.status_code == 204 or empty_options:
            response.headers.pop("Content-Type", None)
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz() -> Response:
        failures = {}
        for name, check in readiness_checks.items():
            try:
                reason = check()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                reason = f"{type(exc).__name__}"
            if reason:
                failures[name] = reason
        if failures:
            raise Problem(
                503,
                "unavailable",
                "Not ready: " + ", ".join(sorted(failures)),
                title="Service unavailable",
                extra={"checks": failures},
                headers={"Retry-After": "1"},  # as every 503 `unavailable` (docs/API.md)
            )
        details = {name: describe() for name, describe in (readiness_details or {}).items()}
        return jsonify(status="ready", service=service, checks=dict.fromkeys(readiness_checks, "ok"), **details)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document(app, title=f"{service} API"))

    return app


def _host_required() -> None:
    """Refuse an HTTP/1.1 request without Host (RFC 9112 section 3.2), as docs/API.md lists: 400."""
    # gunicorn refuses a repeated Host itself but serves a missing one.
    if request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and "HTTP_HOST" not in request.environ:
        raise Problem(400, "bad_request", "The request is malformed.", title="Bad request")


def _whole_streamed_body() -> None:
    """Buffer a body sent without Content-Length (chunked): whole, or refused with 413."""
    # Without a Content-Length werkzeug reads up to MAX_CONTENT_LENGTH and hands on that much as if
    # it were the whole body, so a longer one would be cut short and accepted. Read one byte past
    # the limit here, then give werkzeug the body with its length.
    if request.content_length is not None or "Transfer-Encoding" not in request.headers:
        return
    limit = request.max_content_length
    assert limit is not None  # MAX_CONTENT_LENGTH is always set above
    try:
        body = request.environ["wsgi.input"].read(limit + 1)
    except ParseException:  # gunicorn: a bad chunk size or terminator
        raise BadRequest("The chunked request body is malformed.") from None
    if len(body) > limit:
        raise RequestEntityTooLarge()
    request.environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})


def create_resource_service_app(
    service: str, context: DatabaseServiceContext, *, domain_errors: ErrorTable | None = None
) -> Flask:
    """An app for a service that owns one database and verifies callers with the public keys alone;
    it follows auth's revocation feed and re-reads the keys in the background."""
    config, verifier = context.config, context.verifier
    metrics = ServiceMetrics(service) if config.metrics_enabled else None
    feed = RevocationFeed(
        config.revocation_feed_url,
        config.revocation_feed_stream,
        verifier.revocations,
        verifier.keys,
        jwks_refresh_interval=config.jwks_refresh_interval,
        metrics=metrics,
    )
    # No keys at start-up is not fatal: the JWKS URL may bring them later, and /readyz says so.
    app = create_service_app(
        service,
        context,
        readiness_checks={
            "database": lambda: ping(context.engine),
            "keys": lambda: None if len(verifier.keys) else "no public keys",
        },
        unavailable_errors=DATABASE_UNAVAILABLE_ERRORS,
        domain_errors=domain_errors,
        readiness_details={"revocations": feed.status},
        metrics=metrics,
    )
    app.extensions[REVOCATION_FEED_EXTENSION] = feed
    # On the first request of each worker (and again after a fork): a thread started earlier, in
    # a gunicorn master that preloads the app, would not survive the fork.
    app.before_request(feed.ensure_started)
    return app
