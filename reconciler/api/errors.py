"""Error responses of the wp HTTP API: every failure becomes `{"error": {"type", "message", "path"}}`.

Owns the mapping from `reconciler.errors` (and request validation failures) to HTTP status codes and JSON
bodies, so clients can turn them back into the same exception types. Must never leak a traceback to the
client and never decide anything about the domain: the status comes from the exception's `http_status`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler.diagnostics import format_path
from reconciler.errors import ConfigError, StoreUnavailableError, ValidationError, WpError

log = logging.getLogger(__name__)

# Where FastAPI says a bad value came from; kept in the message, dropped from the field path.
_LOCATIONS = {
    "body": "request body",
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
}


def error_response(
    status: int,
    type_: str,
    message: str,
    path: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"type": type_, "message": message, "path": path, "details": details or {}}}
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(status_code=status, content=jsonable_encoder(body), headers=headers)


def _safe_details(details: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = jsonable_encoder(details)
    except (TypeError, ValueError):
        return {k: str(v) for k, v in details.items()}
    return encoded if isinstance(encoded, dict) else {}


def _wp_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WpError)
    path = (format_path(exc.path) or None) if isinstance(exc, ValidationError) else None
    details = _safe_details(dict(exc.details))
    if isinstance(exc, ConfigError):
        details["diagnostics"] = [d.to_json() for d in exc.diagnostics if hasattr(d, "to_json")]
    headers = None
    if isinstance(exc, StoreUnavailableError):
        # a transient database failure: 503, and when to try again (HTTP's Retry-After is whole seconds)
        headers = {"Retry-After": str(max(1, math.ceil(float(exc.details.get("retry_after") or 1))))}
        unreachable = getattr(request.app.state, "store_unreachable", None)
        if unreachable is not None:  # heartbeats may have been lost: the scheduler listens anew
            unreachable()
    return error_response(exc.http_status, type(exc).__name__, exc.message, path, details, headers)


def _describe(errors: Sequence[Any], with_location: bool) -> tuple[str | None, str]:
    """The dotted path of the first bad field and one line per error naming each field."""
    lines: list[str] = []
    first: str | None = None
    for err in errors:
        loc = [p for p in err.get("loc", ()) if isinstance(p, str | int)]
        where = ""
        if with_location and loc and loc[0] in _LOCATIONS:
            where = _LOCATIONS[str(loc[0])]
            loc = loc[1:]
        path = format_path(loc)
        first = first if first is not None else (path or None)
        label = f"{where} {path}".strip() or "request"
        lines.append(f"{label}: {err.get('msg', 'invalid value')}")
    return first, "; ".join(lines)


def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    path, message = _describe(exc.errors(), with_location=True)
    return error_response(422, "ValidationError", message, path)


def _value_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, pydantic.ValidationError)
    path, message = _describe(exc.errors(), with_location=False)
    return error_response(422, "ValidationError", message, path)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {401: "AuthError", 404: "NotFoundError", 405: "MethodNotAllowed"}
    return error_response(exc.status_code, kinds.get(exc.status_code, "HTTPError"), str(exc.detail))


def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    # Python's ints and datetimes are unbounded where the database's are not: always a value the caller sent.
    message = f"a number or time in the request is out of range ({exc}); integers must fit 64 bits"
    return error_response(422, "ValidationError", message)


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error while serving a request", exc_info=exc)
    return error_response(
        500, "InternalError", f"the server failed: {type(exc).__name__}; see the server log"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WpError, _wp_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(pydantic.ValidationError, _value_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(Exception, _unexpected)
