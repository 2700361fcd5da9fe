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


# Prometheus multiprocess mode (shared/metrics.py): every worker writes its samples to files in one
# directory, which each start empties (an operator's PROMETHEUS_MULTIPROC_DIR, e.g. a tmpfs that
# admin commands run in the same container also write to) or creates (a private one otherwise).
# prometheus-client reads the variable when first imported, so the master imports it only after
# setting it, and the workers import it after the fork.
def on_starting(server):  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for leftover in Path(given).glob("*.db"):  # an earlier run's samples
            leftover.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.metrics_dir = tempfile.mkdtemp(prefix="metrics-")


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    # A dead worker's gauges leave the "live" aggregations; its counters stay in the sums.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    import shutil

    if getattr(server, "metrics_dir", None):
        shutil.rmtree(server.metrics_dir, ignore_errors=True)
