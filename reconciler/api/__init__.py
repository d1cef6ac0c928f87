"""The HTTP face of a SqlStore (FastAPI): routes, auth, request/response shapes; no SQL here.

`create_app` is imported lazily so that HttpStore, which shares `reconciler.api.shapes`, does not load FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from reconciler.api.app import create_app

        return create_app
    raise AttributeError(f"module 'reconciler.api' has no attribute {name!r}")
