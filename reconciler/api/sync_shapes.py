"""HTTP shapes of the continuous sync's status (`GET /sync`, `PUT /sync/status`, `POST /sync/control`).

Owns the JSON form of a SyncStatus (also what `wp sync status --json` prints) and its conversions. Must never
hold routes or rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reconciler.api.shapes import MAX_INT, Shape, UtcDatetime
from reconciler.store.base import SyncKey, SyncPhase, SyncStatus

# The column sizes of store/tables.py's sync_status, so a value too long is a 422 here, not a store error.
Branch = Annotated[str, Field(min_length=1, max_length=300)]
Revision = Annotated[str, Field(max_length=64)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


class SyncKeyShape(Shape):
    repo: str = Field(min_length=1)
    branch: Branch
    path: str = "."


class SyncStatusShape(Shape):
    repo: str = Field(min_length=1)
    branch: Branch
    path: str
    phase: SyncPhase
    reason: str = Field(default="", max_length=100)
    message: str = ""
    fetched_revision: Revision | None = None
    attempted_revision: Revision | None = None
    applied_revision: Revision | None = None
    last_attempt_at: UtcDatetime | None = None
    last_success_at: UtcDatetime | None = None
    last_plan: dict[str, Count] | None = None
    drift: list[str] = Field(default_factory=list)
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    failures: Count = 0
    live_digest: Revision | None = None
    suspended: bool = False
    requested_at: UtcDatetime | None = None
    handled_request_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    # set by a server that runs the loop itself: git could not be fetched at its last pass (never stored)
    fetch_error: str | None = None


def sync_status_to_shape(s: SyncStatus, fetch_error: str | None = None) -> SyncStatusShape:
    return SyncStatusShape(
        repo=s.key.repo,
        branch=s.key.branch,
        path=s.key.path,
        phase=s.phase,
        reason=s.reason,
        message=s.message,
        fetched_revision=s.fetched_revision,
        attempted_revision=s.attempted_revision,
        applied_revision=s.applied_revision,
        last_attempt_at=s.last_attempt_at,
        last_success_at=s.last_success_at,
        last_plan=dict(s.last_plan) if s.last_plan is not None else None,
        drift=list(s.drift),
        attempts=[dict(a) for a in s.attempts],
        failures=s.failures,
        live_digest=s.live_digest,
        suspended=s.suspended,
        requested_at=s.requested_at,
        handled_request_at=s.handled_request_at,
        updated_at=s.updated_at,
        fetch_error=fetch_error,
    )


def sync_status_from_shape(s: SyncStatusShape) -> SyncStatus:
    return SyncStatus(
        key=SyncKey(s.repo, s.branch, s.path),
        phase=s.phase,
        reason=s.reason,
        message=s.message,
        fetched_revision=s.fetched_revision,
        attempted_revision=s.attempted_revision,
        applied_revision=s.applied_revision,
        last_attempt_at=s.last_attempt_at,
        last_success_at=s.last_success_at,
        last_plan=s.last_plan,
        drift=tuple(s.drift),
        attempts=tuple(s.attempts),
        failures=s.failures,
        live_digest=s.live_digest,
        suspended=s.suspended,
        requested_at=s.requested_at,
        handled_request_at=s.handled_request_at,
        updated_at=s.updated_at,
    )


class SyncControlRequest(Shape):
    """Suspend/resume and/or request a pass of one sync (`key`) or of every sync (`key` null)."""

    key: SyncKeyShape | None = None
    suspend: bool | None = None
    request: bool = False
    now: UtcDatetime | None = None
