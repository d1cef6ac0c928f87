"""One exception tree for what went wrong (as opposed to Diagnostics, which are what a user must fix).

    WpError                      base; `exit_code` is what the CLI exits with
    ├── ConfigError              the config has errors; carries the Diagnostics
    ├── NotFoundError            an object that was named does not exist (HTTP 404)
    ├── ConflictError            an object exists already / a uniqueness rule (HTTP 409)
    ├── ValidationError          a value is refused (HTTP 422); carries the field path
    ├── InvalidTransitionError   a run state change that the transition table forbids (HTTP 409)
    ├── PlanError                a plan is refused by a safety rule (protect, prune, mass delete)
    ├── StalePlanError           live objects changed since the plan was made (exit 3)
    ├── LockHeldError            another apply holds the lease lock (exit 3)
    ├── StoreError               the store failed (database, connection)
    │   └── StoreUnavailableError  a transient failure (connection lost, database restarting, busy): retry (503)
    ├── GitFetchError            git could not fetch a sync's repository (unreachable, no such branch)
    ├── ApiError                 a wp server answered with an error (HTTP status kept)
    └── AuthError                a wp server refused the token (HTTP 401)

Must never import anything but the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class WpError(Exception):
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(WpError):
    http_status = 422

    def __init__(self, diagnostics: Sequence[Any]) -> None:
        self.diagnostics = list(diagnostics)
        n = len(self.diagnostics)
        super().__init__(f"the configuration has {n} error{'s' if n != 1 else ''}")


class NotFoundError(WpError):
    http_status = 404


class ConflictError(WpError):
    http_status = 409


class ValidationError(WpError):
    http_status = 422

    def __init__(self, message: str, path: Sequence[str | int] = (), **details: Any) -> None:
        super().__init__(message, **details)
        self.path = tuple(path)


class InvalidTransitionError(WpError):
    http_status = 409


class PlanError(WpError):
    http_status = 409


class StalePlanError(WpError):
    exit_code = 3
    http_status = 409


class LockHeldError(WpError):
    exit_code = 3
    http_status = 423


class StoreError(WpError):
    http_status = 500


class StoreUnavailableError(StoreError):
    """The database is briefly out of reach (connection lost, a PostgreSQL restart, SQLite busy): the same call
    may succeed in a moment. `details`: `retryable` (always true) and `retry_after` (seconds to wait)."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: float = 1.0, **details: Any) -> None:
        details.pop("retryable", None)
        super().__init__(message, retryable=True, retry_after=retry_after, **details)


class GitFetchError(WpError):
    http_status = 502


class ApiError(WpError):
    def __init__(self, message: str, status: int = 500, **details: Any) -> None:
        super().__init__(message, **details)
        self.http_status = status


class AuthError(WpError):
    http_status = 401
