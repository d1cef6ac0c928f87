"""The continuous sync's status records, in SQL.

Owns `SqlSync`: list, read, save (the loop's fields) and control (`suspend`, `resume`, `now`) of the rows of
`sync_status`, one per (repo, branch, path). Must never decide a phase or run a pass: `gitops/sync.py` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from reconciler.errors import NotFoundError
from reconciler.store import tables
from reconciler.store.base import SyncKey, SyncPhase, SyncStatus
from reconciler.store.connection import SqlEngine

_T = tables.sync_status
ATTEMPTS_KEPT = 10


def sync_id(key: SyncKey) -> str:
    return hashlib.sha256(f"{key.repo}\0{key.branch}\0{key.path}".encode()).hexdigest()


def _phase(value: str) -> SyncPhase:
    try:
        return SyncPhase(value)
    except ValueError:  # a phase a newer wp wrote: show it as unknown rather than fail the listing
        return SyncPhase.UNKNOWN


def status_from_row(row: Mapping[Any, Any]) -> SyncStatus:
    return SyncStatus(
        key=SyncKey(row["repo"], row["branch"], row["path"]),
        phase=_phase(row["phase"]),
        reason=row["reason"],
        message=row["message"],
        fetched_revision=row["fetched_revision"],
        attempted_revision=row["attempted_revision"],
        applied_revision=row["applied_revision"],
        last_attempt_at=row["last_attempt_at"],
        last_success_at=row["last_success_at"],
        last_plan=row["last_plan"],
        drift=tuple(row["drift"] or ()),
        attempts=tuple(row["attempts"] or ()),
        failures=row["failures"],
        live_digest=row["live_digest"],
        suspended=bool(row["suspended"]),
        requested_at=row["requested_at"],
        handled_request_at=row["handled_request_at"],
        updated_at=row["updated_at"],
    )


def _loop_fields(status: SyncStatus, now: datetime) -> dict[str, Any]:
    """The columns the loop owns (never `suspended` or `requested_at`)."""
    return {
        "phase": status.phase.value,
        "reason": status.reason,
        "message": status.message,
        "fetched_revision": status.fetched_revision,
        "attempted_revision": status.attempted_revision,
        "applied_revision": status.applied_revision,
        "last_attempt_at": status.last_attempt_at,
        "last_success_at": status.last_success_at,
        "last_plan": dict(status.last_plan) if status.last_plan is not None else None,
        "drift": list(status.drift),
        "attempts": [dict(a) for a in status.attempts[:ATTEMPTS_KEPT]],
        "failures": status.failures,
        "live_digest": status.live_digest,
        "handled_request_at": status.handled_request_at,
        "updated_at": now,
    }


def _read(conn: Connection, ident: str) -> SyncStatus | None:
    row = conn.execute(select(_T).where(_T.c.id == ident)).mappings().first()
    return status_from_row(row) if row else None


class SqlSync(SqlEngine):
    """Sync status methods of the Store protocol."""

    def list_sync_status(self) -> list[SyncStatus]:
        with self.reading() as conn:
            rows = conn.execute(select(_T).order_by(_T.c.repo, _T.c.branch, _T.c.path)).mappings()
            return [status_from_row(r) for r in rows]

    def get_sync_status(self, key: SyncKey) -> SyncStatus | None:
        with self.reading() as conn:
            return _read(conn, sync_id(key))

    def save_sync_status(self, status: SyncStatus) -> SyncStatus:
        now = datetime.now(UTC)
        ident = sync_id(status.key)
        values = _loop_fields(status, now)
        with self.transaction() as conn:
            if conn.execute(update(_T).where(_T.c.id == ident).values(values)).rowcount == 0:
                conn.execute(
                    insert(_T),
                    {
                        "id": ident,
                        "repo": status.key.repo,
                        "branch": status.key.branch,
                        "path": status.key.path,
                        "suspended": False,
                        "requested_at": None,
                        **values,
                    },
                )
            saved = _read(conn, ident)
        assert saved is not None
        return saved

    def control_sync(
        self, key: SyncKey | None, *, suspend: bool | None = None, request: bool = False, now: datetime
    ) -> list[SyncStatus]:
        values: dict[str, Any] = {}
        if suspend is not None:
            values["suspended"] = suspend
        if request:
            values["requested_at"] = now
        with self.transaction() as conn:
            query = select(_T.c.id).order_by(_T.c.repo, _T.c.branch, _T.c.path)
            if key is not None:
                query = query.where(_T.c.id == sync_id(key))
            ids = list(conn.execute(query).scalars())
            if not ids:
                what = f"no sync of {key}" if key is not None else "no sync has run against this store yet"
                raise NotFoundError(f"{what}; start one with `wp sync start --repo URL`")
            if values:
                conn.execute(update(_T).where(_T.c.id.in_(ids)).values(values))
            found = [_read(conn, i) for i in ids]
        return [s for s in found if s is not None]
