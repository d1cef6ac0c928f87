"""The web UI's pages (GET): pools, a pool, runs, a run and its log tail, deployments, history, sync.

Owns the routes that show things, their query parameters and which template renders them. Pages poll
themselves for live updates (static/wp.js fetches the same URL and swaps the parts marked `data-live`), and
a run's log tail is read incrementally from `/runs/{id}/logs`. Must never change the store (actions.py does)
and never gather facts itself (views.py does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from reconciler.store.base import Store
from reconciler.ui import views
from reconciler.ui.render import Pages
from reconciler.ui.sync import sync_statuses

router = APIRouter()
LOG_BATCH = 500


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _page(request: Request, template: str, **values: Any) -> Response:
    pages: Pages = request.app.state.pages
    return pages.render(request, template, **values)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return RedirectResponse(str(request.scope.get("root_path", "")).rstrip("/") + "/pools", status_code=303)


@router.get("/pools", include_in_schema=False)
def pools_page(request: Request) -> Response:
    rows = views.pools_overview(_store(request), _now())
    return _page(request, "pools.html", section="pools", title="Work pools", pools=rows)


@router.get("/pools/{name}", include_in_schema=False)
def pool_page(request: Request, name: str) -> Response:
    detail = views.pool_detail(_store(request), name, _now())
    return _page(request, "pool.html", section="pools", title=f"Work pool {name}", **detail)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.get("/runs", include_in_schema=False)
def runs_list(
    request: Request,
    pool: str | None = None,
    queue: str | None = None,
    state: str | None = None,
    deployment: str | None = None,
    before: str | None = None,
    skip: int = 0,
) -> Response:
    state = state.upper() if state and state.upper() in views.STATES else None
    filters = views.RunFilters(
        pool=pool or None,
        queue=queue or None,
        state=state,
        deployment=deployment or None,
        before=_parse_time(before),
        skip=max(0, skip),
    )
    store = _store(request)
    page = views.runs_page(store, filters, _now())
    return _page(
        request,
        "runs.html",
        section="runs",
        title="Flow runs",
        filters=filters,
        states=views.STATES,
        pool_names=[p.name for p in store.list_work_pools()],
        deployment_names=sorted(f"{d.flow}/{d.name}" for d in store.list_deployments()),
        paged=filters.before is not None,
        **page,
    )


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, run_id: str) -> Response:
    detail = views.run_detail(_store(request), run_id, _now())
    return _page(request, "run.html", section="runs", title=f"Flow run {detail['run'].name}", **detail)


@router.get("/runs/{run_id}/logs", include_in_schema=False)
def run_logs(request: Request, run_id: str, after: int = -1) -> Response:
    """Log lines after `after` (a seq), for the live tail; `final` says no more will come."""
    store = _store(request)
    run = store.get_flow_run(run_id)
    lines = store.read_logs(run_id, after_seq=after, limit=LOG_BATCH)
    body = {
        "state": run.state,
        "final": run.state in views.FINAL and len(lines) < LOG_BATCH,
        "lines": [
            {"seq": ln.seq, "time": ln.timestamp.isoformat(), "stream": ln.stream, "message": ln.message}
            for ln in lines
        ],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/deployments", include_in_schema=False)
def deployments_page(request: Request) -> Response:
    rows = views.deployments_overview(_store(request))
    return _page(request, "deployments.html", section="deployments", title="Deployments", deployments=rows)


@router.get("/deployments/{flow}/{name}", include_in_schema=False)
def deployment_page(request: Request, flow: str, name: str) -> Response:
    detail = views.deployment_detail(_store(request), flow, name, _now())
    return _page(
        request, "deployment.html", section="deployments", title=f"Deployment {flow}/{name}", **detail
    )


@router.get("/history", include_in_schema=False)
def history_page(request: Request) -> Response:
    records = views.history(_store(request))
    return _page(request, "history.html", section="history", title="Apply history", records=records)


@router.get("/sync", include_in_schema=False)
def sync_page(request: Request) -> Response:
    statuses = sync_statuses(_store(request))
    return _page(request, "sync.html", section="sync", title="Sync", statuses=statuses)
