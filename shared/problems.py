"""RFC 9457 problem documents: the one error envelope every service answers with."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
log = logging.getLogger("shared.problems")

# Stable codes for the HTTP errors werkzeug raises on its own (routing, body size, bad JSON).
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


class Problem(Exception):
    """An error that becomes a problem document; raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_response(self) -> Response:
        body: dict[str, object] = {
            "type": f"urn:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        response = Response(json.dumps(body), status=self.status, mimetype=PROBLEM_CONTENT_TYPE)
        response.headers.update(self.headers)
        return response


@dataclass(frozen=True)
class ProblemFor:
    """The problem a domain exception becomes: one row of a service's error table."""

    status: int
    code: str
    detail: str
    title: str | None = None
    errors: tuple[Mapping[str, str], ...] | None = None
    # Headers that depend on the exception (Retry-After) or finish the answer (clear a cookie).
    headers: Callable[[Exception], Mapping[str, str]] | None = None

    def problem(self, exc: Exception) -> Problem:
        return Problem(
            self.status,
            self.code,
            self.detail,
            title=self.title,
            errors=[dict(e) for e in self.errors] if self.errors is not None else None,
            headers=self.headers(exc) if self.headers else None,
        )


# A service's domain exceptions and the problems they become, registered once per app.
ErrorTable = Mapping[type[Exception], ProblemFor]


def not_found(detail: str = "The resource does not exist.") -> Problem:
    return Problem(404, "not_found", detail, title="Not found")


def validation_error(errors: list[dict[str, str]]) -> Problem:
    return Problem(400, "validation_error", "The request has invalid fields.", errors=errors, title="Validation failed")


def unavailable(detail: str) -> Problem:
    return Problem(503, "unavailable", detail, title="Service unavailable", headers={"Retry-After": "1"})


def _from_http_exception(exc: HTTPException) -> Problem:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.description or exc.name
    if status == 404:
        detail = "No such path."
    elif status == 413:
        detail = "The request body is too large."
    headers = {k: v for k, v in exc.get_headers() if k.lower() in {"allow", "retry-after"}}
    return Problem(status, code, detail, title=exc.name, headers=headers)


def register_error_handlers(
    app: Flask, *, unavailable_errors: Iterable[type[BaseException]] = (), domain_errors: ErrorTable | None = None
) -> None:
    """Answer every error of `app` with a problem document: domain exceptions as their table says,
    dependency outages with 503, anything unexpected with a 500 that reveals nothing."""
    outage_types = tuple(unavailable_errors)

    for exc_type, problem_for in (domain_errors or {}).items():
        app.register_error_handler(exc_type, lambda exc, row=problem_for: row.problem(exc).to_response())

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return exc.to_response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return _from_http_exception(exc).to_response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if outage_types and isinstance(exc, outage_types):
            log.warning("dependency unavailable: %s", type(exc).__name__)
            return unavailable("A backing service is unavailable; try again shortly.").to_response()
        log.exception("unhandled error")
        return Problem(
            500, "internal_error", "An unexpected error occurred.", title="Internal server error"
        ).to_response()
