"""A wp server's error answers turned back into the exceptions of `reconciler.errors`.

Owns the mapping from an answer's `{"error": {"type", "message", "path", "details"}}` (or, without one, its
status) to the exception a store would have raised: ConfigError with its diagnostics, ValidationError with its
path, the one-to-one types, ApiError for anything else; and `retry_after` of a 503, honoured by callers that
retry (the worker). So callers cannot tell an HttpStore from a SqlStore. Must never send a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    InvalidTransitionError,
    LockHeldError,
    NotFoundError,
    PlanError,
    StalePlanError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
    WpError,
)
from reconciler.store.transport import Response

# Error `type`s the server sends that map one-to-one onto our exceptions (ConfigError, ApiError: special).
_BY_TYPE: dict[str, type[WpError]] = {
    cls.__name__: cls
    for cls in (
        NotFoundError,
        ConflictError,
        InvalidTransitionError,
        PlanError,
        StalePlanError,
        LockHeldError,
        StoreError,
        StoreUnavailableError,
        AuthError,
    )
}
_BY_STATUS: dict[int, type[WpError]] = {
    401: AuthError,
    404: NotFoundError,
    409: ConflictError,
    423: LockHeldError,
    503: StoreUnavailableError,
}


def _diagnostic(d: Mapping[str, Any]) -> Diagnostic:
    return Diagnostic(
        severity=Severity(d.get("severity", "error")),
        summary=str(d.get("summary", "")),
        detail=str(d.get("detail", "")),
        file=d.get("file"),
        line=d.get("line"),
        column=d.get("column"),
        path=(d["path"],) if d.get("path") else (),
    )


def _retry_after(header: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date or nothing counts as 1 s), at most 60."""
    try:
        return min(60.0, max(0.0, float(header or 1)))
    except ValueError:
        return 1.0


def error_from_response(response: Response) -> WpError:
    """The exception a store would have raised, rebuilt from a server's error answer."""
    try:
        err = response.json()["error"]
        type_, message = str(err["type"]), str(err["message"])
        path, details = err.get("path"), dict(err.get("details") or {})
        # keys that are constructor parameters of the exceptions must not arrive twice
        details = {k: v for k, v in details.items() if k not in ("path", "status", "message")}
    except (ValueError, KeyError, TypeError):
        type_, message, path, details = "", response.text[:500] or response.reason_phrase, None, {}
    status = response.status_code
    if status == 503:  # honoured by callers that retry (the worker): wait as long as the server asks
        details["retry_after"] = _retry_after(response.headers.get("retry-after"))
    if type_ == "ConfigError":
        return ConfigError([_diagnostic(d) for d in details.get("diagnostics", [])])
    if type_ == "ValidationError" or (not type_ and status == 422):
        return ValidationError(message, path=tuple(path.split(".")) if path else (), **details)
    cls = _BY_TYPE.get(type_) or _BY_STATUS.get(status)
    if cls is not None:
        return cls(message, **details)
    return ApiError(f"the wp server answered {status}: {message}", status=status, **details)
