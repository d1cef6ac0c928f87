"""SqlStore: the Store protocol on SQLite or PostgreSQL.

Owns the assembly of the SQL mixins (engine and transactions, declared-object CRUD, lease lock and history, sync status)
and the two reconcile calls, `snapshot()` and `apply()`. The runtime half comes from the `SqlRuns` (runs.py),
`SqlWorkers` (workers.py), `SqlLogs` (logs.py) and `SqlClaims` (claims.py) mixins, built on the same `SqlEngine`.
Must never hold row layouts (rows.py) or
decide what a plan contains (engine/).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.engine.plan import Plan
from reconciler.errors import ConflictError
from reconciler.model import Key
from reconciler.states import SLOT_STATES
from reconciler.store import integrity
from reconciler.store.base import ApplyProgress, ApplyRecord, RunInputs, Snapshot
from reconciler.store.claims import SqlClaims
from reconciler.store.counts import SqlCounts
from reconciler.store.crud import SqlObjects
from reconciler.store.live import read_live
from reconciler.store.lock import SqlLocks, check_lock, insert_history
from reconciler.store.logs import SqlLogs
from reconciler.store.objects import PlanWriter, check_fresh
from reconciler.store.revision import SqlNoops, raised_once, read_revision
from reconciler.store.runs import SqlRuns
from reconciler.store.settings import (
    read_default_pool,
    read_deleted,
    read_secret_patterns,
    record_secret_patterns,
)
from reconciler.store.sync_status import SqlSync
from reconciler.store.workers import SqlWorkers


def _silent(phase: str, done: int, total: int) -> None:
    """No progress wanted."""


KEYED_CHECK_MAX = 200  # beyond this many objects, one read of everything is cheaper than a long WHERE


class SqlStore(SqlObjects, SqlLocks, SqlRuns, SqlWorkers, SqlLogs, SqlClaims, SqlSync, SqlCounts, SqlNoops):
    """`SqlStore("sqlite:///path/wp.db")` or `SqlStore("postgresql://…")`; migrates the schema on open."""

    def snapshot(self, only: Collection[Key] | None = None) -> Snapshot:
        now = datetime.now(UTC)  # the I/O edge reads the clock for runtime statuses
        with self.reading() as conn:
            revision = read_revision(conn)  # first: the objects read next may be newer, never older
            deleted = read_deleted(conn)
            if only is not None:
                deleted = {k: d for k, d in deleted.items() if k in only}
            return Snapshot(read_live(conn, now, only), read_default_pool(conn), deleted, revision)

    def run_inputs(self, run_id: str, worker: str) -> RunInputs:
        run = self.get_flow_run(run_id)
        if run.worker != worker or run.state not in SLOT_STATES:
            raise ConflictError(
                f"run {run_id} is {run.state}, held by {run.worker or 'no worker'}: worker {worker} may not read "
                "its secret values (only the worker that claimed a run, while it is in flight)"
            )
        flow, _, name = run.deployment.partition("/")
        deployment = self.get_deployment(flow, name)
        return RunInputs(run, deployment, self.get_work_pool(run.work_pool), self.secret_patterns())

    def secret_patterns(self) -> tuple[str, ...]:
        with self.reading() as conn:
            return read_secret_patterns(conn)

    def apply(
        self,
        plan: Plan,
        record: ApplyRecord,
        *,
        lock_id: str | None = None,
        progress: ApplyProgress | None = None,
    ) -> ApplyRecord:
        now = datetime.now(UTC)
        tell = progress or _silent
        with self.transaction() as conn:
            check_lock(conn, lock_id, now)
            # Held until commit: no other writer moves the revision between this read and the one below.
            unchanged = read_revision(conn, hold=True) == record.base_revision
            touched = [c.key for c in plan.actionable]
            tell("checking", 0, len(touched))
            # a small plan (a Terraform resource, a hand-sized change) checks just its objects, not the store
            check_fresh(plan, read_live(conn, now, touched if len(touched) <= KEYED_CHECK_MAX else None))
            with raised_once(conn, len(touched)):
                PlanWriter(conn, plan, now, tell).write()
            record_secret_patterns(conn, plan.project, plan.secret_patterns)
            tell("checking references", len(touched), len(touched))
            integrity.check_plan(conn, plan)
            tell("recording", len(touched), len(touched))
            written = insert_history(conn, record, now)
            return replace(written, revision=read_revision(conn) if unchanged else None)
