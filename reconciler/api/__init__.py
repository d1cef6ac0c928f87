"""The HTTP face of a SqlStore (FastAPI): routes, auth, request/response shapes; no SQL here."""

from reconciler.api.app import create_app

__all__ = ["create_app"]
