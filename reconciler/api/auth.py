"""Bearer-token authentication of the wp HTTP API.

Owns the rule "with an API key configured, every request but `/health` needs `Authorization: Bearer
<key>`"; the web UI under `/ui` is let through to its own gate (a login and a session cookie, same key). It is ASGI middleware rather than a route dependency so that it runs before anything else looks at
the request: an unauthenticated caller learns nothing, not even whether its body would have parsed or its
route exists. Must never log or echo the key.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from reconciler.api.errors import error_response

# The sync webhook authenticates by its HMAC signature instead (GitHub cannot send a bearer token).
OPEN_PATHS = frozenset({"/health", "/sync/webhook"})
# The web UI checks its own session cookie (reconciler.ui.app), which a browser can carry and a header cannot.
UI_PREFIX = "/ui"


def token_matches(authorization: str | None, api_key: str) -> bool:
    """True if the header is `Bearer <api_key>` (scheme case-insensitive), compared in constant time."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), api_key.encode())


def _is_ui(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


class BearerAuth:
    """Refuses with 401 every HTTP request without the right bearer token, except those to OPEN_PATHS."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.api_key is None or scope["type"] != "http" or path in OPEN_PATHS or _is_ui(path):
            await self.app(scope, receive, send)
            return
        if token_matches(Headers(scope=scope).get("authorization"), self.api_key):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "AuthError",
            "missing or wrong API key: send the header `Authorization: Bearer <key>` "
            "with the server's WP_API_KEY",
        )
        await response(scope, receive, send)
