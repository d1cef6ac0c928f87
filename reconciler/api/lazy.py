"""`LazyApp`: an ASGI app that is built by a factory on its first request, then serves every request itself.

Why: the server mounts parts that most deployments use rarely or never (the web UI, with Jinja2 and its
templates). Building them at start-up made every `wp server start` import and set up code that only a browser
ever reaches; built on first use, the server is healthy sooner and smaller while idle, and the first request
to the part is still answered (it waits for the build, once). Must never hold what a part does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send


class LazyApp:
    """`LazyApp(factory)`: `factory()` runs once, on the first HTTP request (never for lifespan events, which a
    mounted app does not get), and the app it returns answers that request and every later one."""

    def __init__(self, factory: Callable[[], ASGIApp]) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()  # first requests may arrive together, each in a threadpool thread

    @property
    def built(self) -> bool:
        return self._app is not None

    def app(self) -> ASGIApp:
        """The built app (building it now if no request has yet)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:  # build in a thread: the event loop keeps serving the API meanwhile
            app = await run_in_threadpool(self.app)
        await app(scope, receive, send)
