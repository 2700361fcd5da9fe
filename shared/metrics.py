"""Prometheus metrics: the names docs/API.md lists, served at `GET /metrics` on each service's own port.

Under gunicorn every worker is a process of its own, so prometheus-client runs in its multiprocess
mode: each worker writes its samples to files in `PROMETHEUS_MULTIPROC_DIR`, a scrape adds them up,
and gunicorn.conf.py gives every start an empty directory and marks dead workers (`child_exit`).
Without that variable (one process: tests, `flask run`) the samples live in the process.

prometheus-client chooses where samples go when it is first imported, so nothing here may import
it before gunicorn.conf.py has set the variable; the app factories import this module, and they
run in the workers.
"""

from __future__ import annotations

import os
import struct
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ATTEMPTS = 5  # reads of the samples files per scrape, see exposition()
# Requests no route matched are counted under one label, never under the path a client made up.
UNMATCHED_ROUTE = "unmatched"

http_requests = Counter(
    "http_requests_total", "HTTP requests answered, by route rule and status", ["service", "method", "route", "status"]
)
http_request_duration = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival in Flask to its answer, by route rule",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
access_token_verifications = Counter(
    "access_token_verifications_total",
    "Requests to routes that need an access token, by outcome (ok, expired, invalid, revoked, missing)",
    ["service", "outcome"],
)
access_token_signature_checks = Counter(
    "access_token_signature_checks_total",
    "Signature and claim checks performed (verified-token cache misses)",
    ["service"],
)
jwks_refreshes = Counter(
    "jwks_refreshes_total", "Reads of the JWKS file or URL, by outcome (ok, failed)", ["service", "outcome"]
)
revocation_feed_lag = Histogram(
    "revocation_feed_lag_seconds",
    "Time from a revocation's publication to its application in this process (live reads only)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
revocation_feed_stale = Gauge(
    "revocation_feed_stale_seconds",
    "Seconds since the revocation feed was last reached; 0 while it is live (the worst worker)",
    ["service"],
    multiprocess_mode="livemax",
)
auth_logins = Counter(
    "auth_logins_total", "Login attempts by outcome (success, invalid_credentials, throttled)", ["outcome"]
)
password_hash_shed = Counter(
    "auth_password_hash_shed_total",
    "Logins and signups answered 503 password_hashing_busy (admission control), by operation",
    ["operation"],
)
auth_refreshes = Counter(
    "auth_refreshes_total",
    "Refresh attempts by outcome (rotated, grace, reused, unknown, missing, csrf_rejected, invalid_dpop_proof)",
    ["outcome"],
)
auth_sessions_revoked = Counter(
    "auth_sessions_revoked_total",
    "Sessions ended, by reason (logout, logout_all, revoked, reuse, admin, cap)",
    ["reason"],
)


class ServiceMetrics:
    """The metrics of one service: its name fills the `service` label."""

    def __init__(self, service: str) -> None:
        self.service = service

    def token_verified(self, outcome: str) -> None:
        access_token_verifications.labels(self.service, outcome).inc()

    def signature_checked(self) -> None:
        access_token_signature_checks.labels(self.service).inc()

    def jwks_read(self, outcome: str) -> None:
        jwks_refreshes.labels(self.service, outcome).inc()

    def revocation_applied(self, lag_seconds: float) -> None:
        revocation_feed_lag.labels(self.service).observe(max(0.0, lag_seconds))

    def revocation_feed_stale_for(self, seconds: float) -> None:
        revocation_feed_stale.labels(self.service).set(seconds)


def install_metrics(app: Flask, metrics: ServiceMetrics) -> None:
    """Time and count every request by its route rule, and serve `GET /metrics`."""
    service = metrics.service

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED_ROUTE
        method = request.method if request.method in METHODS else "other"
        http_requests.labels(service, method, route, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            http_request_duration.labels(service, method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        # The format docs/API.md names (prometheus-client's "latest" is version=1.0.0; with names in
        # plain ASCII, as ours are, its text is the same).
        return Response(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def exposition() -> bytes:
    """Every sample of this service: all workers' when in multiprocess mode, else this process's."""
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if not directory:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for _ in range(ATTEMPTS - 1):
        try:
            return generate_latest(registry)
        except struct.error:
            # A worker creating its samples file leaves it empty for an instant before sizing it;
            # a scrape reading it then would fail. Read again.
            time.sleep(0.01)
    return generate_latest(registry)
