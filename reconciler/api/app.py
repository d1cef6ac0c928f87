"""The wp HTTP API application: `create_app(store, api_key=...)` builds the FastAPI app that serves a Store.

Owns the assembly (routers, auth middleware, error handlers, the OpenAPI security scheme, `/health`) and,
with `background=True`, the scheduler thread that lives as long as the app (started and stopped by the
lifespan, so uvicorn's SIGTERM/SIGINT handling stops it cleanly). Must never contain SQL or domain rules.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

import reconciler.api.v1_probe  # noqa: F401  # first: before any router is built (see the module)
from reconciler.api import deployments, metrics, pools, reconcile, runs, scheduling, sync, wake
from reconciler.api.auth import OPEN_PATHS, UI_PREFIX, BearerAuth
from reconciler.api.errors import install_error_handlers
from reconciler.api.lazy import LazyApp
from reconciler.api.metrics import ServerMetrics
from reconciler.api.shapes import ErrorBody
from reconciler.store.base import Store

if TYPE_CHECKING:
    from reconciler.gitops.sync import SyncLoop

log = logging.getLogger(__name__)

SCHEDULER_INTERVAL = 5.0  # seconds between scheduler ticks when the server runs it

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "missing or wrong bearer token",
        404: "no such object",
        409: "conflict: exists already, stale plan, refused transition",
        422: "a value is refused; `error.path` names the field",
        423: "the lease lock is held",
    }.items()
}


def _start_scheduler(store: Store, stop: threading.Event, state: Any) -> threading.Thread | None:
    """Run `reconciler.runtime.scheduler.Scheduler(store).run_forever(stop, interval)` in a daemon thread,
    if the runtime is installed; an API-only server is still useful without it."""
    try:
        module = importlib.import_module("reconciler.runtime.scheduler")
    except ModuleNotFoundError as exc:
        if exc.name != "reconciler.runtime.scheduler":
            raise
        log.warning("reconciler.runtime.scheduler is not available; serving the API without a scheduler")
        return None
    scheduler = module.Scheduler(store)
    metrics: ServerMetrics = state.metrics
    metrics.scheduler_interval = SCHEDULER_INTERVAL
    # a request that found the database unreachable (503) tells the scheduler heartbeats may have been lost
    state.store_unreachable = lambda: scheduler.store_unreachable(datetime.now(UTC))

    def clock() -> datetime:
        metrics.scheduler_ticked()  # the scheduler reads the clock once, as each tick starts
        return datetime.now(UTC)

    thread = threading.Thread(
        target=scheduler.run_forever, args=(stop, SCHEDULER_INTERVAL, clock), name="wp-scheduler", daemon=True
    )
    thread.start()
    return thread


def _lifespan(store: Store, background: bool, sync_loop: SyncLoop | None) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = _start_scheduler(store, stop, app.state) if background else None
        syncing = None
        if sync_loop is not None:
            syncing = threading.Thread(target=sync_loop.run_forever, name="wp-sync", daemon=True)
            syncing.start()
        try:
            yield
        finally:
            stop.set()
            if sync_loop is not None:
                sync_loop.stop()
            if thread is not None:
                thread.join(timeout=SCHEDULER_INTERVAL * 2)
            if syncing is not None:
                syncing.join(timeout=SCHEDULER_INTERVAL * 2)

    return lifespan


def _secure_openapi(app: FastAPI) -> None:
    """Document the bearer scheme in /openapi.json: required everywhere but OPEN_PATHS."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"bearer": []}]
        for path in OPEN_PATHS:
            for operation in schema.get("paths", {}).get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def _lazy_ui(store: Store, api_key: str | None, notify: Any) -> LazyApp:
    """The web UI, built (Jinja2 and its templates imported) when a browser first asks for it."""

    def build() -> Any:
        from reconciler.ui.app import create_ui_app

        return create_ui_app(store, api_key=api_key or None, notify=notify)

    return LazyApp(build)


def create_app(
    store: Store,
    *,
    api_key: str | None,
    background: bool = False,
    sync_loop: SyncLoop | None = None,
    webhook_secret: str | None = None,
) -> FastAPI:
    """The HTTP face of `store`. With `api_key`, every route but /health (and the webhook, which checks its
    own signature) needs `Authorization: Bearer <api_key>`. With `background`, the scheduler runs in a thread
    for the app's lifetime; with `sync_loop`, so does that continuous sync."""
    app = FastAPI(
        title="wp",
        summary="work pools as code: the HTTP face of a wp store",
        version="1",
        lifespan=_lifespan(store, background, sync_loop),
        responses=_ERRORS,
    )
    app.state.store = store
    app.state.work_signal = wake.WorkSignal()
    for module in (reconcile, pools, deployments, runs, scheduling, wake):
        app.include_router(module.router)
    sync.install(app, loop=sync_loop, webhook_secret=webhook_secret)
    metrics.install(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount(UI_PREFIX, _lazy_ui(store, api_key, app.state.work_signal.notify), name="ui")
    install_error_handlers(app)
    _secure_openapi(app)
    app.add_middleware(BearerAuth, api_key=api_key or None)
    return app
