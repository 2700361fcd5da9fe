"""gunicorn workers that answer the requests gunicorn refuses itself with problem documents.

gunicorn parses the request line, headers and chunk sizes before any app runs and, when they are
bad, writes its own HTML page that repeats the input (`Worker.handle_error`); it has no setting for
that body, so these workers override the method. gunicorn.conf.py names them for all three
services, which is why they live in shared/. The class names must not end in `SyncWorker`: gunicorn
swaps such a class for its plain threaded worker when threads > 1.
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus
from ssl import SSLError
from typing import Any

from gunicorn.http import errors
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

# The status gunicorn itself gives each refusal; every other parse error is a 400.
_STATUS_BY_ERROR: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    # A header the app tried to send, or a bad setting, is the server's fault.
    ((errors.InvalidResponseHeader, errors.InvalidResponseHeaderName, errors.ConfigurationProblem), 500),
    (errors.LimitRequestLine, 414),
    (errors.LimitRequestHeaders, 431),
    (errors.UnsupportedTransferCoding, 501),
    (errors.ExpectationFailed, 417),
    ((errors.ForbiddenProxyRequest, SSLError), 403),
    (errors.ParseException, 400),
)

_PROBLEMS = {
    400: ("bad_request", "Bad request", "The request is malformed."),
    403: ("forbidden", "Forbidden", "This request is not allowed."),
    414: ("uri_too_long", "URI too long", "The request URI is too long."),
    417: ("expectation_failed", "Expectation failed", "The Expect header cannot be met."),
    431: (
        "request_header_too_large",
        "Request header fields too large",
        "A request header, or all of them together, is too large.",
    ),
    500: ("internal_error", "Internal server error", "An unexpected error occurred."),
    501: (
        "not_implemented",
        "Not implemented",
        "The request uses a transfer coding or feature this server does not support.",
    ),
}


def status_for(exc: BaseException) -> int:
    """Return the status gunicorn answers `exc` with."""
    for kinds, status in _STATUS_BY_ERROR:
        if isinstance(exc, kinds):
            return status
    return 500


def problem_response(status: int) -> bytes:
    """Return a whole HTTP/1.1 response carrying the problem document for `status`."""
    code, title, detail = _PROBLEMS[status]
    body = json.dumps(
        {"type": f"urn:problem:{code}", "title": title, "status": status, "detail": detail, "code": code}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _ProblemErrors:
    """Answer a request gunicorn could not take with a problem document instead of an HTML page."""

    log: Any  # gunicorn's logger, set by the worker this class is mixed into

    def handle_error(
        self, req: object, client: socket.socket, addr: tuple[str, int] | None, exc: BaseException
    ) -> None:
        status = status_for(exc)
        if status == 500:
            self.log.exception("Error handling request")
        else:
            # The error's name only: gunicorn's message can repeat the request line, query string
            # (and any token in it) included.
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], type(exc).__name__)
        try:
            write_nonblock(client, problem_response(status))
        except OSError:
            self.log.debug("Failed to send error message.")


class SyncProblemWorker(_ProblemErrors, SyncWorker):
    """gunicorn's sync worker, answering its own errors as problem documents."""


class ThreadProblemWorker(_ProblemErrors, ThreadWorker):
    """gunicorn's gthread worker, answering its own errors as problem documents."""
