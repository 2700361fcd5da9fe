"""Request ids (X-Request-ID in and out), trace ids, and one JSON log line per request."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

from shared.tracing import current_trace_ids

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is reused only when it is short and plain, so it cannot forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
access_log = logging.getLogger("access")


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object a line, with the current request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        # The date and time to the second, formatted once a second rather than once a line; one
        # tuple, replaced whole, so threads of a gthread worker never pair a second with another's text.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, record: logging.LogRecord) -> str:
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
            # The request's span, so that a log line leads to its trace (none when tracing is off).
            if ids := current_trace_ids():
                entry["trace_id"], entry["span_id"] = ids
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """The one handler configure_logging() installs; a marker so it can be replaced."""


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON; calling it again replaces the handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(handler)
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper())


def install_request_log(app: Flask) -> None:
    """Give every request an id, echo it in the response, and log one line when it ends."""

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        if not access_log.isEnabledFor(logging.INFO):
            return response  # LOG_LEVEL above info: no line, so nothing to gather for one
        started = g.get("request_started")
        caller = g.get("caller")
        # The path only: never the query string, headers or body, where secrets could travel.
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
                    "remote_addr": request.remote_addr,
                    "user_id": caller.id if caller else None,
                    # Which worker answered: with several per service, tests and operators can tell them apart.
                    "pid": os.getpid(),
                }
            },
        )
        return response
