"""Turning a page's facts into HTML: the Jinja2 environment of the web UI and its filters.

Owns the template loader (package data under reconciler/ui/templates, autoescaped) and the formatting of
times, durations and JSON for people. Must never read the store: pages hand it plain values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse


def _when(value: datetime | None) -> str:
    """`2030-01-01 12:00:05 UTC`: absolute, unambiguous, sortable."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None, now: datetime) -> str:
    """`12 s ago`, `in 3 min`: how far a time is from now, coarsely."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{seconds:.0f} s"
    elif seconds < 5400:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 172800:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reconciler.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    env.filters["compact"] = _compact
    env.globals["ago"] = _ago
    return env


class Pages:
    """Renders a template with what every page needs (base path, CSRF token, whether to show logout)."""

    def __init__(self) -> None:
        self.env = make_environment()

    def render(self, request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        sessions = request.app.state.sessions
        context = {
            "base": request.scope.get("root_path", "").rstrip("/"),
            "csrf": sessions.csrf_token(session) if session is not None else "",
            "login_required": sessions.login_required,
            "path": request.url.path,
            "now": datetime.now(UTC),
            **values,
        }
        html = self.env.get_template(name).render(context)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
