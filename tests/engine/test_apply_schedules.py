"""Applying a plan that changes schedules: runs of changed schedules are replaced, others are kept (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

from reconciler.engine.apply import apply_plan
from reconciler.engine.diff import make_plan
from reconciler.model import Deployment, DesiredState, Schedule, WorkPool
from reconciler.runtime.scheduler import Scheduler
from reconciler.store.sql import SqlStore


def _now() -> datetime:
    """The store deletes runs expected after its own clock, so the scheduler here runs at the real time too,
    read when each step runs (a time read at import could be an hour behind by then, and a run due in
    between would count as late, not future)."""
    return datetime.now(UTC)


def _desired(hourly: Schedule, daily: Schedule) -> DesiredState:
    return DesiredState(
        project="p",
        pools=(WorkPool(name="pool"),),
        deployments=(
            Deployment(flow="f", name="d", entrypoint="f.py:f", work_pool="pool", schedules=(hourly, daily)),
        ),
    )


def _apply(store: SqlStore, desired: DesiredState) -> None:
    apply_plan(store, make_plan(desired, store.snapshot(), now=_now()), actor="test")


def _runs_by_slug(store: SqlStore) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    for run in store.list_flow_runs(deployment="f/d", limit=1000):
        out.setdefault(run.schedule_slug or "", []).append(run.expected_start_time)
    return {k: sorted(v) for k, v in out.items()}


def test_changing_one_schedule_replaces_only_its_future_runs(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    hourly = Schedule(slug="hourly", interval=3600)
    daily = Schedule(slug="daily", cron="0 6 * * *", timezone="UTC")
    _apply(store, _desired(hourly, daily))
    Scheduler(store).tick(_now())
    before = _runs_by_slug(store)
    assert before["hourly"] and before["daily"]

    every_two_hours = Schedule(slug="hourly", interval=7200)
    _apply(store, _desired(every_two_hours, daily))
    after_apply = _runs_by_slug(store)
    assert "hourly" not in after_apply  # the changed schedule's unclaimed runs are gone
    assert after_apply["daily"] == before["daily"]  # the unchanged one lost nothing

    Scheduler(store).tick(_now())
    hourly_runs = _runs_by_slug(store)["hourly"]
    gaps = {(b - a).total_seconds() for a, b in pairwise(hourly_runs)}
    assert gaps == {7200.0}


def test_reapplying_the_same_config_keeps_every_scheduled_run(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    desired = _desired(Schedule(slug="hourly", interval=3600), Schedule(slug="daily", cron="0 6 * * *"))
    _apply(store, desired)
    Scheduler(store).tick(_now())
    before = _runs_by_slug(store)
    _apply(store, desired)
    Scheduler(store).tick(_now())
    assert _runs_by_slug(store) == before
