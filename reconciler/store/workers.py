"""The workers part of SqlStore: heartbeats, the list of a pool's workers, dead-worker recovery (SPEC §5).

Owns the queries on `workers`, and the recovery that hands back (PENDING → SCHEDULED) or crashes (RUNNING,
CANCELLING → CRASHED) the runs of workers that missed 3 heartbeats, writing each change's row of the run's
history (`run_history.py`) in the same transaction. Whether a worker is online is `rows.worker_online`.

Must never claim runs (`claims.py`) nor change a run but by that recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from reconciler.errors import NotFoundError, ValidationError
from reconciler.model import Worker
from reconciler.states import RunState, transition
from reconciler.store import run_history
from reconciler.store.connection import SqlEngine
from reconciler.store.rows import worker_online
from reconciler.store.runs import SLOT, dialect_insert
from reconciler.store.tables import flow_runs, work_pools, workers


class SqlWorkers(SqlEngine):
    """Mixin of SqlStore: workers and dead-worker recovery."""

    def heartbeat_worker(
        self,
        work_pool: str,
        name: str,
        *,
        interval: float,
        now: datetime,
        host: str | None = None,
        pid: int | None = None,
    ) -> Worker:
        if not name.strip():
            raise ValidationError("a worker name must not be blank; pass --name", path=("name",))
        if interval <= 0:
            raise ValidationError(f"heartbeat interval must be positive, got {interval}", path=("interval",))
        beat = {"last_heartbeat": now, "heartbeat_interval": interval, "host": host, "pid": pid}
        values = {"work_pool": work_pool, "name": name, **beat}
        upsert = dialect_insert(self.dialect)
        with self.transaction() as conn:
            if conn.execute(select(work_pools.c.name).where(work_pools.c.name == work_pool)).first() is None:
                raise NotFoundError(
                    f"work pool {work_pool!r} not found; create it with `wp work-pool create`"
                )
            stmt = upsert(workers).values(values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[workers.c.work_pool, workers.c.name],
                    set_=beat,
                )
            )
        return Worker(work_pool=work_pool, name=name, status="ONLINE", **beat)

    def list_workers(self, work_pool: str, now: datetime) -> list[Worker]:
        c = flow_runs.c
        in_hand_query = (
            select(c.worker, func.count())
            .where(c.work_pool == work_pool, c.state.in_(SLOT), c.worker.is_not(None))
            .group_by(c.worker)
        )
        with self.reading() as conn:
            in_hand: dict[str, int] = {w: int(n) for w, n in conn.execute(in_hand_query)}
            rows = conn.execute(
                select(workers).where(workers.c.work_pool == work_pool).order_by(workers.c.name)
            ).mappings()
            return [
                Worker(
                    work_pool=r["work_pool"],
                    name=r["name"],
                    last_heartbeat=r["last_heartbeat"],
                    heartbeat_interval=r["heartbeat_interval"],
                    status="ONLINE"
                    if worker_online(r["last_heartbeat"], r["heartbeat_interval"], now)
                    else "OFFLINE",
                    host=r["host"],
                    pid=r["pid"],
                    runs_in_hand=in_hand.get(r["name"], 0),
                )
                for r in rows
            ]

    def recover_dead_workers(self, now: datetime, *, heard_since: datetime | None = None) -> dict[str, int]:
        """Runs held by workers that missed 3 heartbeats: PENDING goes back to SCHEDULED, RUNNING and
        CANCELLING become CRASHED. Returns counts: workers, requeued, crashed.

        `heard_since`: since when the caller could have heard heartbeats (its own start, the end of an outage
        of the store): a heartbeat the caller could not have received is not counted as missed, so a worker
        is judged only on 3 intervals the caller was listening for."""
        with self.transaction() as conn:
            held = conn.execute(
                select(flow_runs.c.id, flow_runs.c.state, workers.c.name, workers.c.last_heartbeat)
                .add_columns(workers.c.heartbeat_interval)
                .join(
                    workers,
                    and_(workers.c.work_pool == flow_runs.c.work_pool, workers.c.name == flow_runs.c.worker),
                )
                .where(flow_runs.c.state.in_(SLOT))
            ).all()
            dead = [
                r
                for r in held
                if not worker_online(_heard(r.last_heartbeat, heard_since), r.heartbeat_interval, now)
            ]
            requeue = [r.id for r in dead if r.state == RunState.PENDING.value]
            crash = [r.id for r in dead if r.state != RunState.PENDING.value]
            dead_names = sorted({r.name for r in dead})
            was = {r.id: r.state for r in dead}
            if requeue:
                transition(RunState.PENDING, RunState.SCHEDULED)
                message = "handed back: its worker stopped sending heartbeats"
                _recover(
                    conn,
                    requeue,
                    (RunState.PENDING.value,),
                    (dead_names, was),
                    RunState.SCHEDULED,
                    message,
                    now,
                    worker=None,
                )
            if crash:
                transition(RunState.RUNNING, RunState.CRASHED)
                message = "crashed: its worker stopped sending heartbeats"
                _recover(conn, crash, SLOT, (dead_names, was), RunState.CRASHED, message, now, end_time=now)
        return {"workers": len({r.name for r in dead}), "requeued": len(requeue), "crashed": len(crash)}


def _recover(
    conn: Connection,
    run_ids: Sequence[str],
    still: Sequence[str],
    held_by_dead: tuple[Sequence[str], Mapping[str, str]],
    target: RunState,
    message: str,
    now: datetime,
    **values: Any,
) -> None:
    """Move the runs `run_ids` of dead workers to `target` (with `values`) and record each change in their
    history; only those still in a state of `still` and held by a dead worker: a run another server recovered
    meanwhile and a live worker claimed is kept. `held_by_dead`: the dead workers' names, and the state each
    run was read in."""
    dead_names, was = held_by_dead
    moved = (
        conn.execute(
            update(flow_runs)
            .where(
                flow_runs.c.id.in_(run_ids),
                flow_runs.c.state.in_(still),
                flow_runs.c.worker.in_(dead_names),
            )
            .values(state=target.value, updated=now, state_message=message, **values)
            .returning(flow_runs.c.id)
        )
        .scalars()
        .all()
    )
    run_history.record(
        conn,
        (
            run_history.change(
                run_id, was[run_id], target.value, now, message=message, actor=run_history.RECOVERY
            )
            for run_id in moved
        ),
    )


def _heard(last_heartbeat: datetime, heard_since: datetime | None) -> datetime:
    """The last heartbeat, or the moment the judge started listening if that is later."""
    if heard_since is None:
        return last_heartbeat
    return max(last_heartbeat, heard_since.astimezone(last_heartbeat.tzinfo or UTC))
