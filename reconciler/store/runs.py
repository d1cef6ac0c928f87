"""The runtime half of SqlStore: flow runs, atomic claims, workers, logs, late runs, dead-worker recovery.

Owns every query on `flow_runs`, `workers` and `flow_run_logs`, and the claim: one transaction that locks the
pool (PostgreSQL: the pool row `FOR UPDATE`, candidate runs `FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN
IMMEDIATE` serializes writers), counts slot holders, walks the queues by priority and moves the runs it hands
out to PENDING. Every state change obeys `reconciler.states.transition` (or its table, for set updates).

Must never decide what a schedule produces (runtime/scheduler.py) nor touch declared objects beyond reading
limits and recording queue polls.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import sqlite

from reconciler.errors import ConflictError, NotFoundError, ValidationError
from reconciler.model import FlowRun, LogLine, Worker
from reconciler.states import FINAL_STATES, SLOT_STATES, RunState, can_transition, transition
from reconciler.store.connection import SqlEngine
from reconciler.store.integrity import check_run_target
from reconciler.store.rows import worker_online
from reconciler.store.tables import deployments, flow_run_logs, flow_runs, work_pools, workers
from reconciler.store.tables import work_queues as queue_table

SLOT = tuple(sorted(s.value for s in SLOT_STATES))
CLAIMABLE = (RunState.SCHEDULED.value, RunState.LATE.value)
INSERT_BATCH = 500
MAX_PAGE = 500
Row = Mapping[Any, Any]

_RUN_FIELDS = tuple(FlowRun.model_fields)


def run_values(run: FlowRun, now: datetime) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in _RUN_FIELDS}
    data["created"] = run.created or now
    data["updated"] = now
    return data


def run_from_row(row: Row) -> FlowRun:
    return FlowRun.model_validate({name: row[name] for name in _RUN_FIELDS})


def parse_state(state: str) -> RunState:
    try:
        return RunState(state.upper())
    except ValueError:
        allowed = ", ".join(s.value for s in RunState)
        raise ValidationError(
            f"unknown run state {state!r}; expected one of {allowed}", path=("state",)
        ) from None


def split_deployment(deployment: str) -> tuple[str, str]:
    flow, _, name = deployment.partition("/")
    return flow, name


class _ClaimLimits:
    """Free slots while one claim walks its pool: pool, per queue, per deployment (counted inside the claim's
    transaction, so they are exact for as long as it holds its locks)."""

    def __init__(
        self, conn: Connection, pool: str, pool_limit: int | None, queues: Sequence[str], lock_rows: bool
    ) -> None:
        self.conn = conn
        self.lock_rows = lock_rows
        c = flow_runs.c
        # Two queries shaped so each is an index range over slot holders only (not over every run of the pool).
        held = conn.execute(select(func.count()).where(c.work_pool == pool, c.state.in_(SLOT))).scalar_one()
        rows = conn.execute(
            select(c.work_queue, func.count())
            .where(c.work_pool == pool, c.work_queue.in_(list(queues)), c.state.in_(SLOT))
            .group_by(c.work_queue)
        ).all()
        self.queue_held: Counter[str] = Counter({q: n for q, n in rows})
        self.pool_free = math.inf if pool_limit is None else max(0, pool_limit - held)
        self.deployment_limit: dict[str, int | None] = {}
        self.deployment_held: Counter[str] = Counter()

    def queue_free(self, queue: str, limit: int | None) -> float:
        return math.inf if limit is None else max(0, limit - self.queue_held[queue])

    def deployment_allows(self, deployment: str) -> bool:
        if deployment not in self.deployment_limit:
            self._load_deployment(deployment)
        limit = self.deployment_limit[deployment]
        return limit is None or self.deployment_held[deployment] < limit

    def _load_deployment(self, deployment: str) -> None:
        flow, name = split_deployment(deployment)
        query = select(deployments.c.concurrency_limit).where(
            deployments.c.flow == flow, deployments.c.name == name
        )
        if self.lock_rows:
            # A deployment's runs may sit in several pools: its row lock serializes claims that count them.
            query = query.with_for_update()
        limit = self.conn.execute(query).scalar()
        self.deployment_limit[deployment] = limit
        if limit is not None:
            self.deployment_held[deployment] = self.conn.execute(
                select(func.count()).where(flow_runs.c.deployment == deployment, flow_runs.c.state.in_(SLOT))
            ).scalar_one()

    def take(self, run: Row) -> None:
        self.queue_held[run["work_queue"]] += 1
        self.deployment_held[run["deployment"]] += 1
        self.pool_free -= 1


def delete_scheduled_runs_in(conn: Connection, deployment: str, slugs: Sequence[str], after: datetime) -> int:
    """Delete the unclaimed SCHEDULED runs of `deployment`'s schedules `slugs` expected at or after `after`.

    For the engine's apply, inside its own transaction, when a schedule changes or goes away; runs of
    schedules that did not change are never touched, nor manual runs, nor runs already claimed.
    """
    if not slugs:
        return 0
    result = conn.execute(
        delete(flow_runs).where(
            flow_runs.c.deployment == deployment,
            flow_runs.c.schedule_slug.in_(list(slugs)),
            flow_runs.c.state == RunState.SCHEDULED.value,
            flow_runs.c.expected_start_time >= after,
        )
    )
    return int(result.rowcount or 0)


def _check_run_job_variables(conn: Connection, run: FlowRun) -> None:
    """SPEC §1: a run's job variables, over its deployment's, must satisfy the pool's schema, `required`
    included; checked here so that every client (CLI, API, provider) gets the same refusal."""
    from reconciler.engine.template import validate_job_variables
    from reconciler.model import BaseJobTemplate

    template = conn.execute(
        select(work_pools.c.base_job_template).where(work_pools.c.name == run.work_pool)
    ).scalar()
    if template is None:
        raise NotFoundError(
            f"work pool {run.work_pool!r} of flow run {run.name!r} not found", path=["work_pool"]
        )
    if not template.get("job_configuration"):
        return  # an empty template (as Prefect's `{}`) renders nothing, so there is nothing to hold runs to
    flow, _, name = run.deployment.partition("/")
    deployment_vars = conn.execute(
        select(deployments.c.job_variables).where(deployments.c.flow == flow, deployments.c.name == name)
    ).scalar()
    merged = {**(deployment_vars or {}), **run.job_variables}
    problems = validate_job_variables(BaseJobTemplate.model_validate(template), merged, for_run=True)
    if problems:
        first = problems[0]
        raise ValidationError(
            "job_variables of the run: " + "; ".join(str(p) for p in problems),
            path=["job_variables", *first.path],
        )


def _dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT, which has ON CONFLICT. PostgreSQL's dialect module is imported only by a process
    on a PostgreSQL store: loading it cost every SQLite process tens of milliseconds."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    return sqlite.insert


class SqlRuns(SqlEngine):
    """Mixin of SqlStore: the runtime part of the Store protocol."""

    @property
    def _locks_rows(self) -> bool:
        # SQLite has no row locks; BEGIN IMMEDIATE (SqlEngine.transaction) makes each writer exclusive.
        return self.dialect == "postgresql"

    # ------------------------------------------------------------------------------------------ runs
    def create_flow_run(self, run: FlowRun) -> FlowRun:
        """Insert a run. A run whose idempotency key is already used returns the existing run instead."""
        parse_state(run.state)
        now = datetime.now(UTC)
        with self.transaction() as conn:
            if run.idempotency_key is not None:
                existing = (
                    conn.execute(select(flow_runs).where(flow_runs.c.idempotency_key == run.idempotency_key))
                    .mappings()
                    .first()
                )
                if existing is not None:
                    return run_from_row(existing)
            _check_run_job_variables(conn, run)
            check_run_target(conn, run.work_pool, run.work_queue, run.name)
            values = run_values(run, now)
            conn.execute(insert(flow_runs).values(values))
        return run_from_row(values)

    def set_run_infrastructure(self, run_id: str, infrastructure_id: str) -> FlowRun:
        with self.transaction() as conn:
            changed = conn.execute(
                update(flow_runs).where(flow_runs.c.id == run_id).values(infrastructure_id=infrastructure_id)
            )
            if not changed.rowcount:
                raise NotFoundError(f"flow run {run_id!r} not found; `wp flow-run ls` lists the runs")
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).mappings().one()
        return run_from_row(row)

    def get_flow_run(self, run_id: str) -> FlowRun:
        with self.reading() as conn:
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"flow run {run_id!r} not found; `wp flow-run ls` lists the runs")
        return run_from_row(row)

    def list_flow_runs(
        self,
        *,
        states: Sequence[str] = (),
        work_pool: str | None = None,
        work_queue: str | None = None,
        deployment: str | None = None,
        before: datetime | None = None,
        limit: int = 200,
        match: str | None = None,
        newest_first: bool = False,
    ) -> list[FlowRun]:
        query = select(flow_runs)
        if match is not None:  # a run's name, or a prefix of its id (ids are lowercase hex and dashes)
            query = query.where(
                or_(flow_runs.c.name == match, flow_runs.c.id.startswith(match.lower(), autoescape=True))
            )
        if states:
            query = query.where(flow_runs.c.state.in_([parse_state(s).value for s in states]))
        if work_pool is not None:
            query = query.where(flow_runs.c.work_pool == work_pool)
        if work_queue is not None:
            query = query.where(flow_runs.c.work_queue == work_queue)
        if deployment is not None:
            query = query.where(flow_runs.c.deployment == deployment)
        if before is not None:
            query = query.where(flow_runs.c.expected_start_time <= before)
        order = (flow_runs.c.expected_start_time, flow_runs.c.id)
        query = query.order_by(*(c.desc() for c in order) if newest_first else order).limit(max(0, limit))
        with self.reading() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def set_run_state(
        self,
        run_id: str,
        state: str,
        *,
        message: str | None = None,
        expected: Sequence[str] = (),
        now: datetime,
    ) -> FlowRun:
        target = parse_state(state)
        wanted = {parse_state(s) for s in expected}
        with self.transaction() as conn:
            query = select(flow_runs).where(flow_runs.c.id == run_id)
            row = conn.execute(query.with_for_update() if self._locks_rows else query).mappings().first()
            if row is None:
                raise NotFoundError(f"flow run {run_id!r} not found; `wp flow-run ls` lists the runs")
            current = RunState(row["state"])
            if wanted and current not in wanted:
                names = ", ".join(sorted(wanted))
                raise ConflictError(f"flow run {run_id} is {current}, not {names}; it was changed meanwhile")
            transition(current, target)
            values = _state_values(row, target, message, now)
            conn.execute(update(flow_runs).where(flow_runs.c.id == run_id).values(values))
        return run_from_row({**row, **values})

    # ------------------------------------------------------------------------------------------ claim
    def claim_runs(
        self,
        work_pool: str,
        worker: str,
        *,
        limit: int,
        scheduled_before: datetime,
        now: datetime,
        work_queues: Sequence[str] = (),
    ) -> list[FlowRun]:
        with self.transaction() as conn:
            pool_query = select(work_pools.c.paused, work_pools.c.concurrency_limit).where(
                work_pools.c.name == work_pool
            )
            # The pool row lock makes every claim on this pool count slot holders one after the other.
            pool = conn.execute(pool_query.with_for_update() if self._locks_rows else pool_query).first()
            if pool is None:
                raise NotFoundError(f"work pool {work_pool!r} not found; `wp work-pool ls` lists the pools")
            queues = self._polled_queues(conn, work_pool, work_queues)
            conn.execute(
                update(queue_table)
                .where(
                    queue_table.c.work_pool == work_pool, queue_table.c.name.in_([q["name"] for q in queues])
                )
                .values(last_polled=now)
            )
            if pool.paused or limit <= 0:
                return []
            limits = _ClaimLimits(
                conn, work_pool, pool.concurrency_limit, [q["name"] for q in queues], self._locks_rows
            )
            picked: list[Row] = []
            for queue in queues:
                room = min(limit - len(picked), limits.pool_free)
                if room <= 0:
                    break
                if queue["paused"]:
                    continue
                room = min(room, limits.queue_free(queue["name"], queue["concurrency_limit"]))
                if room > 0:
                    picked.extend(
                        self._pick(conn, work_pool, queue["name"], int(room), scheduled_before, limits)
                    )
            return self._mark_pending(conn, picked, worker, now)

    def _polled_queues(self, conn: Connection, pool: str, names: Sequence[str]) -> list[Row]:
        rows: list[Row] = list(
            conn.execute(
                select(queue_table.c.name, queue_table.c.paused, queue_table.c.concurrency_limit)
                .where(queue_table.c.work_pool == pool)
                .order_by(queue_table.c.priority, queue_table.c.name)
            ).mappings()
        )
        if not names:
            return rows
        known = {r["name"] for r in rows}
        unknown = sorted(set(names) - known)
        if unknown:
            raise NotFoundError(
                f"work queue {', '.join(unknown)} not found in pool {pool!r}; "
                f"its queues are: {', '.join(sorted(known))}"
            )
        return [r for r in rows if r["name"] in set(names)]

    def _pick(
        self, conn: Connection, pool: str, queue: str, room: int, before: datetime, limits: _ClaimLimits
    ) -> list[Row]:
        """Up to `room` due runs of one queue, oldest first, skipping runs of deployments at their limit."""
        page = min(MAX_PAGE, max(2 * room, 32))
        streams = [self._due(conn, pool, queue, state, before, page) for state in CLAIMABLE]
        taken: list[Row] = []
        for run in heapq.merge(*streams, key=lambda r: (r["expected_start_time"], r["id"])):
            if len(taken) >= room:
                break
            if limits.deployment_allows(run["deployment"]):
                limits.take(run)
                taken.append(run)
        return taken

    def _due(
        self, conn: Connection, pool: str, queue: str, state: str, before: datetime, page: int
    ) -> Iterator[Row]:
        """Due runs of one queue in one state, in (expected_start_time, id) order, read page by page so that a
        claim reads about as many rows as it hands out (index ix_flow_runs_pool_queue_state)."""
        c = flow_runs.c
        after: tuple[datetime, str] | None = None
        while True:
            query: Select[Any] = select(flow_runs).where(
                c.work_pool == pool, c.work_queue == queue, c.state == state, c.expected_start_time <= before
            )
            if after is not None:
                query = query.where(
                    c.expected_start_time >= after[0],
                    or_(
                        c.expected_start_time > after[0],
                        and_(c.expected_start_time == after[0], c.id > after[1]),
                    ),
                )
            query = query.order_by(c.expected_start_time, c.id).limit(page)
            if self._locks_rows:
                query = query.with_for_update(skip_locked=True)
            rows: list[Row] = list(conn.execute(query).mappings())
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1]["expected_start_time"], rows[-1]["id"])

    def _mark_pending(self, conn: Connection, picked: list[Row], worker: str, now: datetime) -> list[FlowRun]:
        if not picked:
            return []
        values = {"state": RunState.PENDING.value, "worker": worker, "updated": now, "state_message": None}
        ids = [r["id"] for r in picked]
        conn.execute(
            update(flow_runs).where(flow_runs.c.id.in_(ids), flow_runs.c.state.in_(CLAIMABLE)), values
        )
        return [run_from_row({**r, **values}) for r in picked]

    # ------------------------------------------------------------------------------------------ scheduler
    def insert_scheduled_runs(self, runs: Iterable[FlowRun]) -> int:
        """Insert runs, skipping any whose id or idempotency key exists already; returns how many were new."""
        now = datetime.now(UTC)
        rows = [run_values(r, now) for r in runs]
        dialect_insert = _dialect_insert(self.dialect)
        inserted = 0
        with self.transaction() as conn:
            for start in range(0, len(rows), INSERT_BATCH):
                stmt = dialect_insert(flow_runs).on_conflict_do_nothing().returning(flow_runs.c.id)
                inserted += len(conn.execute(stmt, rows[start : start + INSERT_BATCH]).all())
        return inserted

    def delete_scheduled_runs(self, deployment: str, slugs: Sequence[str], after: datetime) -> int:
        with self.transaction() as conn:
            return delete_scheduled_runs_in(conn, deployment, slugs, after)

    def scheduled_run_times(self, deployment: str, *, after: datetime) -> dict[str, set[datetime]]:
        """Expected start times (≥ `after`) of the runs each schedule (by slug) of `deployment` made."""
        c = flow_runs.c
        query = select(c.schedule_slug, c.expected_start_time).where(
            c.deployment == deployment, c.schedule_slug.is_not(None), c.expected_start_time >= after
        )
        times: dict[str, set[datetime]] = {}
        with self.reading() as conn:
            for slug, when in conn.execute(query):
                times.setdefault(slug, set()).add(when)
        return times

    def mark_late_runs(self, now: datetime, threshold_seconds: float = 15.0) -> int:
        """SCHEDULED runs whose expected start is `threshold_seconds` past become LATE (still claimable)."""
        if not can_transition(RunState.SCHEDULED, RunState.LATE):  # the transition table is the authority
            return 0
        cutoff = now - timedelta(seconds=threshold_seconds)
        with self.transaction() as conn:
            result = conn.execute(
                update(flow_runs)
                .where(
                    flow_runs.c.state == RunState.SCHEDULED.value, flow_runs.c.expected_start_time <= cutoff
                )
                .values(state=RunState.LATE.value, updated=now)
            )
        return int(result.rowcount or 0)

    def recover_dead_workers(self, now: datetime) -> dict[str, int]:
        """Runs held by workers that missed 3 heartbeats: PENDING goes back to SCHEDULED, RUNNING and
        CANCELLING become CRASHED. Returns counts: workers, requeued, crashed."""
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
            dead = [r for r in held if not worker_online(r.last_heartbeat, r.heartbeat_interval, now)]
            requeue = [r.id for r in dead if r.state == RunState.PENDING.value]
            crash = [r.id for r in dead if r.state != RunState.PENDING.value]
            dead_names = sorted({r.name for r in dead})
            if requeue:
                transition(RunState.PENDING, RunState.SCHEDULED)
                conn.execute(
                    update(flow_runs)
                    # the worker too: a run another server requeued meanwhile and a live worker claimed is kept
                    .where(
                        flow_runs.c.id.in_(requeue),
                        flow_runs.c.state == RunState.PENDING.value,
                        flow_runs.c.worker.in_(dead_names),
                    )
                    .values(
                        state=RunState.SCHEDULED.value,
                        worker=None,
                        updated=now,
                        state_message="handed back: its worker stopped sending heartbeats",
                    )
                )
            if crash:
                transition(RunState.RUNNING, RunState.CRASHED)
                conn.execute(
                    update(flow_runs)
                    .where(
                        flow_runs.c.id.in_(crash),
                        flow_runs.c.state.in_(SLOT),
                        flow_runs.c.worker.in_(dead_names),
                    )
                    .values(
                        state=RunState.CRASHED.value,
                        updated=now,
                        end_time=now,
                        state_message="crashed: its worker stopped sending heartbeats",
                    )
                )
        return {"workers": len({r.name for r in dead}), "requeued": len(requeue), "crashed": len(crash)}

    def count_runs_by_state(self, work_pool: str, work_queue: str | None = None) -> dict[str, int]:
        query = select(flow_runs.c.state, func.count()).where(flow_runs.c.work_pool == work_pool)
        if work_queue is not None:
            query = query.where(flow_runs.c.work_queue == work_queue)
        with self.reading() as conn:
            return {state: int(n) for state, n in conn.execute(query.group_by(flow_runs.c.state))}

    # ------------------------------------------------------------------------------------------ workers
    def heartbeat_worker(self, work_pool: str, name: str, *, interval: float, now: datetime) -> Worker:
        if not name.strip():
            raise ValidationError("a worker name must not be blank; pass --name", path=("name",))
        if interval <= 0:
            raise ValidationError(f"heartbeat interval must be positive, got {interval}", path=("interval",))
        values = {"work_pool": work_pool, "name": name, "last_heartbeat": now, "heartbeat_interval": interval}
        dialect_insert = _dialect_insert(self.dialect)
        with self.transaction() as conn:
            if conn.execute(select(work_pools.c.name).where(work_pools.c.name == work_pool)).first() is None:
                raise NotFoundError(
                    f"work pool {work_pool!r} not found; create it with `wp work-pool create`"
                )
            stmt = dialect_insert(workers).values(values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[workers.c.work_pool, workers.c.name],
                    set_={"last_heartbeat": now, "heartbeat_interval": interval},
                )
            )
        return Worker(
            work_pool=work_pool, name=name, last_heartbeat=now, heartbeat_interval=interval, status="ONLINE"
        )

    def list_workers(self, work_pool: str, now: datetime) -> list[Worker]:
        with self.reading() as conn:
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
                )
                for r in rows
            ]

    # ------------------------------------------------------------------------------------------ logs
    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store log lines in the order given; the store numbers them per run (`seq`), not the caller."""
        by_run: dict[str, list[LogLine]] = {}
        for line in lines:
            by_run.setdefault(line.run_id, []).append(line)
        if not by_run:
            return
        with self.transaction() as conn:
            for run_id, run_lines in by_run.items():
                self._append_run_logs(conn, run_id, run_lines)

    def _append_run_logs(self, conn: Connection, run_id: str, lines: list[LogLine]) -> None:
        query = select(flow_runs.c.id).where(flow_runs.c.id == run_id)
        # Locking the run row serializes writers of one run's log, so their sequence numbers never collide.
        if conn.execute(query.with_for_update() if self._locks_rows else query).first() is None:
            raise NotFoundError(f"flow run {run_id!r} not found; cannot store its logs")
        last = conn.execute(
            select(func.max(flow_run_logs.c.seq)).where(flow_run_logs.c.run_id == run_id)
        ).scalar()
        start = -1 if last is None else int(last)
        rows = [
            {
                "run_id": run_id,
                "seq": start + i,
                "timestamp": ln.timestamp,
                "stream": ln.stream,
                "message": ln.message,
            }
            for i, ln in enumerate(lines, start=1)
        ]
        conn.execute(insert(flow_run_logs), rows)

    def read_logs(self, run_id: str, *, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        query = (
            select(flow_run_logs)
            .where(flow_run_logs.c.run_id == run_id, flow_run_logs.c.seq > after_seq)
            .order_by(flow_run_logs.c.seq)
            .limit(max(0, limit))
        )
        with self.reading() as conn:
            return [LogLine.model_validate(dict(r)) for r in conn.execute(query).mappings()]


def _state_values(row: Row, target: RunState, message: str | None, now: datetime) -> dict[str, Any]:
    """The columns a state change writes: times, the claiming worker, the run count."""
    values: dict[str, Any] = {"state": target.value, "state_message": message, "updated": now}
    if target is RunState.RUNNING:
        values["start_time"] = row["start_time"] or now
        values["run_count"] = (row["run_count"] or 0) + 1
    if target in FINAL_STATES:
        values["end_time"] = now
    if target is RunState.SCHEDULED:
        values["worker"] = None  # handed back: no worker holds it any more
    return values
