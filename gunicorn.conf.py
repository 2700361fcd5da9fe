"""gunicorn settings shared by the three services (`gunicorn -c gunicorn.conf.py 'pkg:create_app()'`).

Worker model: see bench/README and the closing notes; override with WEB_CONCURRENCY, GUNICORN_THREADS.
"""

import os

from shared import tracing


def _positive_whole_number(variable: str, default: str) -> int:
    """Read a count from the environment; a bad value stops gunicorn with an error naming the variable."""
    value = os.environ.get(variable, default)
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{variable} must be a whole number of at least 1, not {value!r}")
    return int(value)


workers = _positive_whole_number("WEB_CONCURRENCY", "2")
threads = _positive_whole_number("GUNICORN_THREADS", "4")
# gunicorn's sync and gthread workers, answering the requests gunicorn refuses itself (bad request
# line, headers or chunks) with problem documents instead of HTML pages.
worker_class = (
    "shared.gunicorn_errors.ThreadProblemWorker" if threads > 1 else "shared.gunicorn_errors.SyncProblemWorker"
)
# The gateway keeps upstream connections open; keep them a little longer than nginx does.
keepalive = 75
timeout = 30
graceful_timeout = 10
# Each service writes its own JSON access line with the request id; gunicorn's would repeat it.
accesslog = None
errorlog = "-"
loglevel = "warning"

# Traces (shared/tracing.py): each worker makes its own tracer provider, and with it the exporter's
# thread, after the fork; the master makes none, also when an app is preloaded into it.
tracing.start_in_workers()


def post_fork(server: object, worker: object) -> None:
    """Start this worker's tracing, named for the app it serves (`auth_service:create_app()`)."""
    app_uri = str(getattr(getattr(server, "app", None), "app_uri", None) or "silent-auth")
    tracing.start_tracing(app_uri.partition(":")[0])
