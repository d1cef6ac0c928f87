"""The web UI application: `create_ui_app(store, api_key=...)`, mounted by the API under `/ui`.

Owns the assembly (pages, actions, static files from package data, error pages) and the gate in front of
it: with an API key, a request without a valid session cookie (or the API's bearer header, for scripts)
gets the login page and nothing else; without a key, a session is issued silently so actions can carry a
CSRF token. Owns login and logout. Must never contain SQL: pages read and act through the Store protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from reconciler.errors import NotFoundError, WpError
from reconciler.store.base import Store
from reconciler.ui import actions, pages
from reconciler.ui.render import Pages
from reconciler.ui.session import COOKIE, SESSION_SECONDS, Sessions

OPEN = ("/login", "/static/")  # reachable before logging in (the login page needs its stylesheet)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _local_path(target: str | None, base: str) -> str:
    """Where to go after login: only a path inside the UI (never another site)."""
    if target and target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return base + "/"


def _set_cookie(response: Response, value: str, request: Request) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path=_base(request) + "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def create_ui_app(
    store: Store, *, api_key: str | None, notify: Callable[[str], None] | None = None
) -> FastAPI:
    """The UI of `store`. `notify(pool)` is called when an action may have made runs of a pool claimable
    (the API passes its workers' wake signal, so a run triggered here starts within a round trip)."""
    app = FastAPI(title="wp web UI", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.notify = notify or (lambda _pool: None)
    app.state.sessions = sessions = Sessions(api_key)
    app.state.pages = renderer = Pages()
    app.mount("/static", StaticFiles(packages=[("reconciler.ui", "static")]), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    # a thousand pools make ~0.9 MB of HTML, polled every few seconds: compressed it is a few dozen kB
    app.add_middleware(GZipMiddleware, minimum_size=4096)

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        relative = request.url.path[len(_base(request)) :] or "/"
        session = sessions.read(request.cookies.get(COOKIE))
        request.state.session = session
        request.state.bearer = sessions.bearer_matches(request.headers.get("authorization"))
        if relative.startswith(OPEN) or session is not None or request.state.bearer:
            return await call_next(request)
        if sessions.login_required:
            if request.method == "GET" and "x-wp-live" not in request.headers:
                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{_base(request)}/login?next={target}", status_code=303)
            return JSONResponse({"ok": False, "message": "log in first"}, status_code=401)
        # an open UI: give this browser a session so its actions can carry a CSRF token
        request.state.session, cookie = sessions.issue()
        response = await call_next(request)
        _set_cookie(response, cookie, request)
        return response

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> Response:
        if not sessions.login_required:
            return RedirectResponse(_local_path(next, _base(request)), status_code=303)
        return renderer.render(request, "login.html", next=_local_path(next, _base(request)), error=None)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, key: str = Form(""), next: str = Form("")) -> Response:
        target = _local_path(next, _base(request))
        if not sessions.key_matches(key):
            return renderer.render(
                request, "login.html", status_code=401, next=target, error="That is not the server's API key."
            )
        _session, cookie = sessions.issue()
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, cookie, request)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")) -> Response:
        if not sessions.csrf_matches(request.state.session, csrf):
            return JSONResponse({"ok": False, "message": "missing or wrong CSRF token"}, status_code=403)
        response = RedirectResponse(f"{_base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=_base(request) + "/")
        return response

    @app.exception_handler(WpError)
    def store_error(request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 409
        if actions.wants_json(request):
            return JSONResponse({"ok": False, "message": str(exc)}, status_code=status)
        return renderer.render(request, "error.html", status_code=status, message=str(exc))

    return app
