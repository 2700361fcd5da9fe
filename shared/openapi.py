"""Schema-validated routes and the OpenAPI document generated from the same pydantic models."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal

from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from shared.problems import Problem, validation_error

_REF_TEMPLATE = "#/components/schemas/{model}"
_FLASK_PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass
class Operation:
    """What the OpenAPI document says of one route."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Flatten pydantic errors to docs/API.md's `[{"field", "message"}]`."""
    return [
        {"field": ".".join(str(part) for part in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


def _refuse_unless_json() -> None:
    # Only JSON: a cross-site HTML form can send text/plain or form encodings without a CORS
    # preflight, never application/json, so this also closes the form-based CSRF path.
    if request.mimetype != "application/json":
        raise Problem(
            415, "unsupported_media_type", "The request body must be application/json.", title="Unsupported media type"
        )


def _has_body() -> bool:
    return bool(request.content_length) or "Transfer-Encoding" in request.headers


def _parse_body(model: type[BaseModel]) -> BaseModel:
    _refuse_unless_json()
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise Problem(400, "invalid_json", "The request body is not valid JSON.", title="Invalid JSON") from None
        raise validation_error(field_errors(exc)) from None


def _parse_query(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_error(field_errors(exc)) from None


# What a view decorated with `operation` returns: a model, nothing (204), or either with a status
# and headers; a ready Response passes through.
ViewResult = BaseModel | Response | None | tuple[BaseModel | None, int] | tuple[BaseModel | None, int, dict[str, str]]


def _to_response(result: Any) -> Any:
    """Serialize a pydantic model (optionally with status and headers) as JSON."""
    status, headers = None, None
    if isinstance(result, tuple):
        result, status, *rest = result
        headers = rest[0] if rest else None
    if isinstance(result, BaseModel):
        # pydantic writes the JSON itself (compact), without a dict and Flask's encoder in between.
        result = Response(result.model_dump_json(), mimetype="application/json")
    elif result is None:
        result = Response(status=204)
    if status is not None:
        result.status_code = status
    if headers:
        result.headers.update(headers)
    return result


def operation(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    errors: tuple[int, ...] = (),
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate a route's body and query with pydantic, pass them as `body`/`query`, document it."""
    spec = Operation(summary, body, query, responses or {200: None}, errors, tags)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = _parse_query(query)
            if body is not None:
                kwargs["body"] = _parse_body(body)
            elif _has_body():
                _refuse_unless_json()  # docs/API.md: any request with a body sends JSON; this one is not read
            return _to_response(view(*args, **kwargs))

        wrapper.openapi = spec  # type: ignore[attr-defined]
        return wrapper

    return decorate


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}


def openapi_document(app: Flask, title: str, version: str = "1.0.0") -> dict[str, Any]:
    """Build an OpenAPI 3.1 document from the app's routes decorated with `operation`."""
    paths: dict[str, dict[str, Any]] = {}
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    collected: list[tuple[str, str, Any, Operation]] = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        spec: Operation | None = getattr(view, "openapi", None)
        if spec is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            collected.append((_FLASK_PATH_PARAM.sub(r"{\1}", rule.rule), method.lower(), rule, spec))
            models += [(m, "validation") for m in (spec.body, spec.query) if m is not None]
            models += [(m, "serialization") for m in spec.responses.values() if m is not None]
    keyed, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF_TEMPLATE)

    for path, method, rule, spec in collected:
        view = app.view_functions[rule.endpoint]
        op: dict[str, Any] = {"summary": spec.summary, "operationId": f"{rule.endpoint}_{method}", "responses": {}}
        if spec.tags:
            op["tags"] = list(spec.tags)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in rule.arguments
        ]
        if spec.query is not None:
            schema = keyed[(spec.query, "validation")]
            resolved = definitions["$defs"][schema["$ref"].rsplit("/", 1)[1]]
            for name, prop in resolved.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "schema": prop, "required": name in resolved.get("required", [])}
                )
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keyed[(spec.body, "validation")]}},
            }
        if getattr(view, "requires_caller", False):
            op["security"] = [{"bearer": []}]
        for status, model in spec.responses.items():
            response: dict[str, Any] = {"description": "Success"}
            if model is not None:
                response["content"] = {"application/json": {"schema": keyed[(model, "serialization")]}}
            op["responses"][str(status)] = response
        # Any request may meet these: bad or oversized requests are refused before routing (414 and
        # 431 by the gateway or the HTTP server), and an outage is a 503.
        error_statuses = set(spec.errors) | {400, 404, 405, 413, 414, 431, 503}
        if spec.body is not None:
            error_statuses.add(415)
        if getattr(view, "requires_caller", False):
            error_statuses.add(401)
        for status in sorted(error_statuses):
            op["responses"][str(status)] = {
                "description": "Problem",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        paths.setdefault(path, {})[method] = op

    schemas = dict(definitions.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
