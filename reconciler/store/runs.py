"""The flow-runs part of SqlStore: flow runs and their states, the scheduler's runs, late runs.

Owns the queries on `flow_runs` but the claim (`claims.py`), the workers' recovery (`workers.py`) and the
logs (`logs.py`); and the run row helpers those share (`run_from_row`, `SLOT`, `dialect_insert`). Every state change
obeys `reconciler.states.transition` (or its table, for set updates) and writes its row of the run's history
(`run_history.py`) in the same transaction.

Must never decide what a schedule produces (runtime/scheduler.py) nor touch declared objects beyond reading
limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.dialects import sqlite

from reconciler.errors import ConflictError, NotFoundError, ValidationError
from reconciler.model import FlowRun, RunStateChange
from reconciler.states import FINAL_STATES, SLOT_STATES, RunState, can_transition, transition
from reconciler.store import run_history
from reconciler.store.connection import SqlEngine
from reconciler.store.integrity import check_run_target
from reconciler.store.tables import deployments, flow_runs, work_pools

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
    from reconciler.engine.template_variables import validate_job_variables
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


def dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT, which has ON CONFLICT. PostgreSQL's dialect module is imported only by a process
    on a PostgreSQL store: loading it cost every SQLite process tens of milliseconds."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    return sqlite.insert


class SqlRuns(SqlEngine):
    """Mixin of SqlStore: the flow-runs part of the Store protocol."""

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
        actor: str | None = None,
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
            change = run_history.change(
                run_id, current.value, target.value, now, message=message, actor=actor
            )
            run_history.record(conn, [change])
        return run_from_row({**row, **values})

    def read_run_history(self, run_id: str) -> list[RunStateChange]:
        with self.reading() as conn:
            if conn.execute(select(flow_runs.c.id).where(flow_runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"flow run {run_id!r} not found; `wp flow-run ls` lists the runs")
            return run_history.read(conn, run_id)

    # ------------------------------------------------------------------------------------------ scheduler
    def insert_scheduled_runs(self, runs: Iterable[FlowRun]) -> int:
        """Insert runs, skipping any whose id or idempotency key exists already; returns how many were new."""
        now = datetime.now(UTC)
        rows = [run_values(r, now) for r in runs]
        upsert = dialect_insert(self.dialect)
        inserted = 0
        with self.transaction() as conn:
            for start in range(0, len(rows), INSERT_BATCH):
                stmt = upsert(flow_runs).on_conflict_do_nothing().returning(flow_runs.c.id)
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
        message = f"not started {threshold_seconds:g} s after its expected start"
        with self.transaction() as conn:
            late = (
                conn.execute(
                    update(flow_runs)
                    .where(
                        flow_runs.c.state == RunState.SCHEDULED.value,
                        flow_runs.c.expected_start_time <= cutoff,
                    )
                    .values(state=RunState.LATE.value, updated=now)
                    .returning(flow_runs.c.id)
                )
                .scalars()
                .all()
            )
            run_history.record(
                conn,
                (
                    run_history.change(
                        run_id,
                        RunState.SCHEDULED.value,
                        RunState.LATE.value,
                        now,
                        message=message,
                        actor=run_history.SCHEDULER,
                    )
                    for run_id in late
                ),
            )
        return len(late)

    def count_runs_by_state(self, work_pool: str, work_queue: str | None = None) -> dict[str, int]:
        query = select(flow_runs.c.state, func.count()).where(flow_runs.c.work_pool == work_pool)
        if work_queue is not None:
            query = query.where(flow_runs.c.work_queue == work_queue)
        with self.reading() as conn:
            return {state: int(n) for state, n in conn.execute(query.group_by(flow_runs.c.state))}


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
