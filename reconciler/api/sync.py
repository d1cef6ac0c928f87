"""Routes of the continuous sync: its status, its controls, and the GitHub push webhook.

Owns `GET /sync` (every status record, with the fetch error of a loop this server runs, which is never
stored), `GET|PUT /sync/status` (one record: read, and written by a loop that talks to this server),
`POST /sync/control` (suspend, resume, now) and `POST /sync/webhook`. The webhook is open to callers without
the API key (GitHub cannot send one) and authenticated instead by `X-Hub-Signature-256`, the HMAC-SHA256 of
the body with WP_SYNC_WEBHOOK_SECRET, compared in constant time; a bad or missing signature is 401 and
changes nothing, as does a delivery id seen before. Must never run a pass itself: it asks the loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reconciler.api.dependencies import StoreDep
from reconciler.api.errors import error_response
from reconciler.api.sync_shapes import (
    SyncControlRequest,
    SyncStatusShape,
    sync_status_from_shape,
    sync_status_to_shape,
)
from reconciler.errors import NotFoundError
from reconciler.store.base import Store, SyncKey, SyncStatus

router = APIRouter(tags=["sync"])

WEBHOOK_PATH = "/sync/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERIES_KEPT = 1000


def _loop(request: Request) -> Any:
    return getattr(request.app.state, "sync_loop", None)


def _shape(status: SyncStatus, loop: Any) -> SyncStatusShape:
    error = loop.fetch_error if loop is not None and loop.settings.key == status.key else None
    return sync_status_to_shape(status, fetch_error=error)


@router.get("/sync", response_model=list[SyncStatusShape])
def get_sync(request: Request, store: StoreDep) -> list[SyncStatusShape]:
    loop = _loop(request)
    records = store.list_sync_status()
    shapes = [_shape(s, loop) for s in records]
    if loop is not None and loop.fetch_error and all(s.key != loop.settings.key for s in records):
        # the loop has never reached git: nothing stored yet, but say why
        shapes.append(_shape(SyncStatus(loop.settings.key), loop))
    return shapes


@router.get("/sync/status", response_model=SyncStatusShape | None)
def get_sync_status(request: Request, store: StoreDep, repo: str, branch: str, path: str = ".") -> Any:
    status = store.get_sync_status(SyncKey(repo, branch, path))
    return _shape(status, _loop(request)) if status is not None else None


@router.put("/sync/status", response_model=SyncStatusShape)
def put_sync_status(body: SyncStatusShape, store: StoreDep) -> SyncStatusShape:
    return sync_status_to_shape(store.save_sync_status(sync_status_from_shape(body)))


@router.post("/sync/control", response_model=list[SyncStatusShape])
def post_sync_control(body: SyncControlRequest, request: Request, store: StoreDep) -> list[SyncStatusShape]:
    key = SyncKey(body.key.repo, body.key.branch, body.key.path) if body.key is not None else None
    changed = store.control_sync(
        key, suspend=body.suspend, request=body.request, now=body.now or datetime.now(UTC)
    )
    loop = _loop(request)
    if loop is not None and any(s.key == loop.settings.key for s in changed):
        loop.trigger()
    return [_shape(s, loop) for s in changed]


# ------------------------------------------------------------------------------------------------ webhook


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest((header or "").strip().encode(), expected.encode())


def _normalized(url: str) -> str:
    url = url.strip().removeprefix("file://").rstrip("/").removesuffix(".git")
    for prefix in ("https://", "http://", "ssh://", "git://"):
        if url.startswith(prefix):
            url = url[len(prefix) :].split("@", 1)[-1]
    return url.replace(":", "/").lower()


def pushed_sources(payload: dict[str, Any]) -> tuple[set[str], str | None]:
    """The repository URLs a GitHub push event names, normalized, and the branch it pushed (None if a tag)."""
    repository = payload.get("repository") or {}
    urls = {
        _normalized(str(repository[field]))
        for field in ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url")
        if isinstance(repository, dict) and repository.get(field)
    }
    ref = str(payload.get("ref") or "")
    return urls, ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def _matches(key: SyncKey, urls: set[str], branch: str | None) -> bool:
    if branch != key.branch:
        return False
    # Here, not at the top: gitops.source loads GitPython, which a server that gets no webhook never needs.
    from reconciler.gitops.source import remote_url

    return bool({_normalized(key.repo), _normalized(remote_url(key.repo))} & urls)


class _Deliveries:
    """Delivery ids seen recently: a replayed delivery is refused."""

    def __init__(self) -> None:
        self.seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, delivery: str | None) -> bool:
        if not delivery:
            return True
        if delivery in self.seen:
            return False
        self.seen[delivery] = None
        while len(self.seen) > DELIVERIES_KEPT:
            self.seen.popitem(last=False)
        return True


def _trigger(store: Store, loop: Any, urls: set[str], branch: str | None) -> list[str]:
    keys = {s.key for s in store.list_sync_status() if _matches(s.key, urls, branch)}
    for key in sorted(keys, key=str):
        store.control_sync(key, request=True, now=datetime.now(UTC))
    if loop is not None and _matches(loop.settings.key, urls, branch):
        keys.add(loop.settings.key)
        loop.trigger()
    return sorted(str(k) for k in keys)


@router.post(WEBHOOK_PATH, responses={401: {"description": "missing or bad X-Hub-Signature-256"}})
async def post_sync_webhook(request: Request) -> JSONResponse:
    """A GitHub push event: an immediate pass of every sync that follows the pushed repository and branch."""
    secret: str | None = getattr(request.app.state, "sync_webhook_secret", None)
    body = await request.body()
    if not secret:
        return error_response(401, "AuthError", "webhooks are off: the server has no WP_SYNC_WEBHOOK_SECRET")
    if not signature_matches(secret, body, request.headers.get(SIGNATURE_HEADER)):
        return error_response(
            401,
            "AuthError",
            f"missing or wrong {SIGNATURE_HEADER}: sign the body with WP_SYNC_WEBHOOK_SECRET",
        )
    event = request.headers.get("X-GitHub-Event", "push")
    if event == "ping":
        return JSONResponse({"triggered": [], "message": "pong"})
    if event != "push":
        return error_response(422, "ValidationError", f"only push events trigger a sync, not {event!r}")
    deliveries: _Deliveries = request.app.state.sync_deliveries
    if not deliveries.first_time(request.headers.get("X-GitHub-Delivery")):
        return error_response(409, "ConflictError", "this delivery was received before; replays are refused")
    try:
        payload = json.loads(body)
    except ValueError:
        return error_response(422, "ValidationError", "the body is not JSON")
    urls, branch = pushed_sources(payload if isinstance(payload, dict) else {})
    store: Store = request.app.state.store
    triggered = await run_in_threadpool(_trigger, store, _loop(request), urls, branch)
    if not triggered:
        raise NotFoundError(f"no sync follows {sorted(urls)[:1] or ['this repository']} at branch {branch!r}")
    return JSONResponse({"triggered": triggered})


def install(app: Any, *, loop: Any, webhook_secret: str | None) -> None:
    """Mount the routes and give them the loop this server runs (or None) and the webhook secret."""
    app.state.sync_loop = loop
    app.state.sync_webhook_secret = webhook_secret
    app.state.sync_deliveries = _Deliveries()
    app.include_router(router)
