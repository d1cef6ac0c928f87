"""The apply lease lock and the apply history, in SQL.

Owns `SqlLocks`: acquire (waiting up to a timeout, taking over an expired lease), release, force-unlock, the
current holder, the lock check apply makes inside its transaction, and the history rows written with each
apply. Must never decide what an apply writes: `objects.py` does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from reconciler.errors import ConflictError, LockHeldError, NotFoundError, ValidationError
from reconciler.store import tables
from reconciler.store.base import MAX_LEASE_SECONDS, ApplyRecord, LockInfo
from reconciler.store.connection import SqlEngine
from reconciler.store.holder import HolderProcess

APPLY_LOCK = "apply"
LOCK_POLL_SECONDS = 0.1


def _lock_from_row(row: Mapping[Any, Any]) -> LockInfo:
    return LockInfo(
        row["lock_id"],
        row["holder"],
        row["operation"],
        row["acquired_at"],
        row["expires_at"],
        host=row["holder_host"],
        pid=row["holder_pid"],
        started=row["holder_started"],
    )


def read_lock(conn: Connection) -> LockInfo | None:
    row = conn.execute(select(tables.locks).where(tables.locks.c.name == APPLY_LOCK)).mappings().first()
    return _lock_from_row(row) if row else None


def held_message(lock: LockInfo) -> str:
    process = lock.process
    by = f"{lock.holder}, {process.describe()}" if process is not None else lock.holder
    return (
        f"the store is locked by {by} ({lock.operation}) "
        f"since {lock.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"lock id {lock.id}, lease until {lock.expires_at:%H:%M:%S} UTC; wait and retry (--lock-timeout), "
        f"or run `wp force-unlock {lock.id}` if that apply is gone"
    )


def check_lease(ttl: float) -> None:
    """A lease is positive and at most MAX_LEASE_SECONDS: a holder that dies keeps the lock that long."""
    if not 0 < ttl <= MAX_LEASE_SECONDS:
        raise ValidationError(
            f"a lease must be more than 0 and at most {MAX_LEASE_SECONDS:.0f} seconds, got {ttl:g}",
            path=("ttl",),
        )


def check_lock(conn: Connection, lock_id: str | None, now: datetime) -> None:
    """Refuse to write while someone else holds a live lease; `lock_id` is the caller's own lease, if any."""
    lock = read_lock(conn)
    if lock is None or lock.expires_at <= now:
        return
    if lock.id != lock_id:
        raise LockHeldError(held_message(lock), holder=lock.holder, lock_id=lock.id)


def insert_history(conn: Connection, record: ApplyRecord, now: datetime) -> ApplyRecord:
    values = {
        "time": now,
        "project": record.project,
        "actor": record.actor,
        "summary": dict(record.summary),
        "git_commit": record.git_commit,
        "git_branch": record.git_branch,
        "git_dirty": record.git_dirty,
        "plan_hash": record.plan_hash,
        "addresses": list(record.addresses),
        "git_author": record.git_author,
        "git_message": record.git_message,
    }
    new_id = conn.execute(
        insert(tables.apply_history).returning(tables.apply_history.c.id), values
    ).scalar_one()
    return replace(record, id=new_id, time=now)


def _record_from_row(row: Mapping[Any, Any]) -> ApplyRecord:
    return ApplyRecord(
        project=row["project"],
        actor=row["actor"],
        summary=row["summary"],
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        git_dirty=row["git_dirty"],
        plan_hash=row["plan_hash"],
        time=row["time"],
        id=row["id"],
        addresses=tuple(row["addresses"]),
        git_author=row["git_author"],
        git_message=row["git_message"],
    )


class SqlLocks(SqlEngine):
    """Lease lock and history methods of the Store protocol."""

    def _try_lock(
        self, holder: str, operation: str, ttl: float, process: HolderProcess | None
    ) -> LockInfo | None:
        """Take the lock if free or expired; None when another live lease holds it."""
        now = datetime.now(UTC)
        with self.transaction() as conn:
            current = read_lock(conn)
            if current is not None and current.expires_at > now:
                return None
            conn.execute(delete(tables.locks).where(tables.locks.c.name == APPLY_LOCK))
            lock = LockInfo(
                uuid.uuid4().hex,
                holder,
                operation,
                now,
                now + timedelta(seconds=ttl),
                host=process.host if process else None,
                pid=process.pid if process else None,
                started=process.started if process else None,
            )
            conn.execute(
                insert(tables.locks),
                {
                    "name": APPLY_LOCK,
                    "lock_id": lock.id,
                    "holder": holder,
                    "operation": operation,
                    "acquired_at": lock.acquired_at,
                    "expires_at": lock.expires_at,
                    "holder_host": lock.host,
                    "holder_pid": lock.pid,
                    "holder_started": lock.started,
                },
            )
            return lock

    def acquire_lock(
        self,
        holder: str,
        operation: str,
        *,
        timeout: float = 0.0,
        ttl: float = 600.0,
        process: HolderProcess | None = None,
    ) -> LockInfo:
        check_lease(ttl)
        deadline = time.monotonic() + timeout
        while True:
            try:
                lock = self._try_lock(holder, operation, ttl, process)
            except ConflictError:
                lock = None  # another process inserted its lease between our read and write (PostgreSQL)
            if lock is not None:
                return lock
            if time.monotonic() >= deadline:
                current = self.current_lock()
                if current is None:
                    continue  # released while we looked: try once more
                raise LockHeldError(held_message(current), holder=current.holder, lock_id=current.id)
            time.sleep(LOCK_POLL_SECONDS)

    def release_lock(self, lock_id: str) -> None:
        """Release our own lease; releasing a lease that is gone (expired and taken over) does nothing."""
        with self.transaction() as conn:
            conn.execute(delete(tables.locks).where(tables.locks.c.lock_id == lock_id))

    def force_unlock(self, lock_id: str) -> LockInfo:
        with self.transaction() as conn:
            lock = read_lock(conn)
            if lock is None or lock.id != lock_id:
                held = (
                    f"; the lock currently held has id {lock.id} ({lock.holder})"
                    if lock
                    else "; no lock is held"
                )
                raise NotFoundError(f"no lock with id {lock_id!r}{held}")
            conn.execute(delete(tables.locks).where(tables.locks.c.lock_id == lock_id))
            return lock

    def current_lock(self) -> LockInfo | None:
        """The live lease, if any (an expired lease counts as free)."""
        with self.reading() as conn:
            lock = read_lock(conn)
        return lock if lock is not None and lock.expires_at > datetime.now(UTC) else None

    def list_history(self, project: str | None = None, limit: int = 50) -> list[ApplyRecord]:
        h = tables.apply_history
        query = select(h).order_by(h.c.id.desc()).limit(limit)
        if project is not None:
            query = query.where(h.c.project == project)
        with self.reading() as conn:
            return [_record_from_row(r) for r in conn.execute(query).mappings()]
