"""SqlStore: the Store protocol on SQLite or PostgreSQL.

Owns the assembly of the SQL mixins (engine and transactions, declared-object CRUD, lease lock and history)
and the two reconcile calls, `snapshot()` and `apply()`. The runtime half (claims, runs, workers, logs) comes
from the `SqlRuns` mixin in `runs.py`, built on the same `SqlEngine`. Must never hold row layouts (rows.py) or
decide what a plan contains (engine/).
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.plan import Plan
from reconciler.store.base import ApplyRecord, Snapshot
from reconciler.store.crud import SqlObjects
from reconciler.store.lock import SqlLocks, check_lock, insert_history
from reconciler.store.objects import PlanWriter, check_fresh, read_default_pool, read_deleted, read_live
from reconciler.store.runs import SqlRuns


class SqlStore(SqlObjects, SqlLocks, SqlRuns):
    """`SqlStore("sqlite:///path/wp.db")` or `SqlStore("postgresql://…")`; migrates the schema on open."""

    def snapshot(self) -> Snapshot:
        now = datetime.now(UTC)  # the I/O edge reads the clock for runtime statuses
        with self.reading() as conn:
            return Snapshot(read_live(conn, now), read_default_pool(conn), read_deleted(conn))

    def apply(self, plan: Plan, record: ApplyRecord, *, lock_id: str | None = None) -> ApplyRecord:
        now = datetime.now(UTC)
        with self.transaction() as conn:
            check_lock(conn, lock_id, now)
            check_fresh(plan, read_live(conn, now))
            PlanWriter(conn, plan, now).write()
            return insert_history(conn, record, now)
