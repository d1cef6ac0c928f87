"""The scheduler: the horizon of runs it keeps, names and keys, DST, and ticks against a real store (injected clock)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, Schedule, WorkPool, attributes, key_of
from reconciler.runtime.scheduler import Scheduler, due_runs, run_name
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

NOW = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
HOURLY = Schedule(slug="hourly", cron="0 * * * *")


def dep(*schedules: Schedule, **fields: object) -> Deployment:
    values: dict[str, object] = {"flow": "etl", "name": "nightly", "entrypoint": "flows/etl.py:etl"}
    values |= {"work_pool": "p", "parameters": {"a": 1}, "schedules": schedules} | fields
    return Deployment.model_validate(values)


def deploy(store: SqlStore, d: Deployment, action: Action = Action.CREATE) -> None:
    changes = [Change(d.key, action, None, attributes(d))]
    changes += [Change(key_of(s, d), action, None, attributes(s)) for s in d.schedules]
    store.apply(Plan(project="t", changes=tuple(changes)), ApplyRecord(project="t", actor="test", summary={}))


def times(store: SqlStore, state: str = "SCHEDULED") -> list[datetime]:
    return [r.expected_start_time for r in store.list_flow_runs(states=[state], limit=1000)]


# ---------------------------------------------------------------------------------------------- pure due_runs


def test_hourly_cron_keeps_three_runs_ahead() -> None:
    runs = due_runs(dep(HOURLY), HOURLY, set(), NOW)
    assert [r.expected_start_time.hour for r in runs] == [13, 14, 15]
    first = runs[0]
    assert first.state == "SCHEDULED" and first.deployment == "etl/nightly" and first.work_queue == "default"
    assert first.idempotency_key == "etl/nightly#hourly@2030-01-01T13:00:00+00:00"
    assert first.schedule_slug == "hourly" and first.parameters == {"a": 1}


def test_horizon_is_at_least_an_hour_and_at_most_a_hundred_runs() -> None:
    minutely = Schedule(slug="m", cron="* * * * *")
    runs = due_runs(dep(minutely), minutely, set(), NOW)
    assert len(runs) == 61 and runs[-1].expected_start_time == datetime(2030, 1, 1, 13, 1, tzinfo=UTC)
    every_10s = Schedule(slug="s", interval=10)
    assert len(due_runs(dep(every_10s), every_10s, set(), NOW)) == 100
    daily = Schedule(slug="d", cron="0 2 * * *")
    assert len(due_runs(dep(daily), daily, set(), NOW)) == 3


def test_existing_times_paused_deployments_and_inactive_schedules_produce_nothing_new() -> None:
    have = {datetime(2030, 1, 1, 13, tzinfo=UTC), datetime(2030, 1, 1, 14, tzinfo=UTC)}
    assert [r.expected_start_time.hour for r in due_runs(dep(HOURLY), HOURLY, have, NOW)] == [15]
    assert due_runs(dep(HOURLY, paused=True), HOURLY, set(), NOW) == []
    inactive = HOURLY.model_copy(update={"active": False})
    assert due_runs(dep(inactive), inactive, set(), NOW) == []


def test_schedule_parameters_override_the_deployment_and_queue_is_kept() -> None:
    s = Schedule(slug="x", cron="0 * * * *", parameters={"a": 2, "b": 3})
    [run, *_] = due_runs(dep(s, work_queue="high"), s, set(), NOW)
    assert run.parameters == {"a": 2, "b": 3} and run.work_queue == "high"


def test_names_are_readable_and_stable() -> None:
    runs = due_runs(dep(HOURLY), HOURLY, set(), NOW)
    again = due_runs(dep(HOURLY), HOURLY, set(), NOW)
    assert [r.id for r in runs] == [r.id for r in again]
    assert all(re.fullmatch(r"[a-z]+-[a-z]+", r.name) for r in runs)
    assert run_name(runs[0].id) == runs[0].name
    assert len({run_name(str(i)) for i in range(200)}) > 100


def test_daily_cron_follows_local_time_across_dst() -> None:
    berlin = Schedule(slug="b", cron="0 9 * * *", timezone="Europe/Berlin")
    now = datetime(2030, 3, 29, 10, tzinfo=UTC)  # Berlin leaves CET for CEST on 2030-03-31
    got = [r.expected_start_time for r in due_runs(dep(berlin), berlin, set(), now)]
    assert got == [
        datetime(2030, 3, 30, 8, tzinfo=UTC),
        datetime(2030, 3, 31, 7, tzinfo=UTC),
        datetime(2030, 4, 1, 7, tzinfo=UTC),
    ]


def test_a_deployment_without_a_pool_must_be_resolved_first() -> None:
    with pytest.raises(ValueError, match="has no work pool"):
        due_runs(dep(HOURLY, work_pool=None), HOURLY, set(), NOW)


# ---------------------------------------------------------------------------------------------- ticks on a store


@pytest.fixture
def sched(store: SqlStore) -> Scheduler:
    store.create_work_pool(WorkPool(name="p"))
    return Scheduler(store)


def test_tick_is_idempotent_and_slides_the_window(sched: Scheduler, store: SqlStore) -> None:
    deploy(store, dep(HOURLY))
    assert sched.tick(NOW).created == 3
    assert sched.tick(NOW + timedelta(seconds=5)).created == 0
    store.update_deployment("etl", "nightly", description="re-applied")  # same schedules: no duplicates
    assert sched.tick(NOW + timedelta(minutes=1)).created == 0
    assert sched.tick(NOW + timedelta(hours=1)).created == 1
    assert [(r.expected_start_time.hour, r.state) for r in store.list_flow_runs()] == [
        (13, "LATE"),
        (14, "SCHEDULED"),
        (15, "SCHEDULED"),
        (16, "SCHEDULED"),
    ]


def test_paused_deployment_stops_producing_but_paused_pool_does_not(
    sched: Scheduler, store: SqlStore
) -> None:
    deploy(store, dep(HOURLY, paused=True))
    assert sched.tick(NOW).created == 0
    store.update_deployment("etl", "nightly", paused=False)
    store.update_work_pool("p", paused=True)
    assert sched.tick(NOW).created == 3
    claimed = store.claim_runs("p", "w", limit=10, scheduled_before=NOW + timedelta(days=1), now=NOW)
    assert claimed == []


def test_changed_schedule_loses_only_its_own_future_runs(sched: Scheduler, store: SqlStore) -> None:
    daily = Schedule(slug="daily", cron="0 6 * * *")
    deploy(store, dep(HOURLY, daily))
    assert sched.tick(NOW).created == 6
    kept = {r.id for r in store.list_flow_runs(deployment="etl/nightly") if r.schedule_slug == "daily"}
    half_hourly = Schedule(slug="hourly", cron="30 * * * *")
    store.update_deployment("etl", "nightly", schedules=(half_hourly, daily))
    assert store.delete_scheduled_runs("etl/nightly", ["hourly"], NOW) == 3
    assert sched.tick(NOW).created == 3
    runs = store.list_flow_runs(deployment="etl/nightly")
    assert {r.id for r in runs if r.schedule_slug == "daily"} == kept
    assert sorted(r.expected_start_time.minute for r in runs if r.schedule_slug == "hourly") == [30, 30, 30]


def test_default_pool_is_used_and_a_missing_one_is_reported(sched: Scheduler, store: SqlStore) -> None:
    deploy(store, dep(HOURLY, work_pool=None))
    report = sched.tick(NOW)
    assert report.created == 0
    assert report.skipped == ("etl/nightly: no work pool and no default pool is set",)
    store.set_default_work_pool("p")
    assert sched.tick(NOW).created == 3
    assert {r.work_pool for r in store.list_flow_runs()} == {"p"}


def test_tick_marks_late_runs_and_recovers_dead_workers(sched: Scheduler, store: SqlStore) -> None:
    deploy(store, dep(HOURLY))
    sched.tick(NOW)
    t1 = datetime(2030, 1, 1, 13, 0, 5, tzinfo=UTC)
    store.heartbeat_worker("p", "w", interval=10, now=t1)
    [claimed] = store.claim_runs("p", "w", limit=5, scheduled_before=t1, now=t1)
    store.set_run_state(claimed.id, "RUNNING", now=t1)
    report = sched.tick(datetime(2030, 1, 1, 14, 0, 20, tzinfo=UTC))
    assert (report.late, report.crashed, report.requeued) == (1, 1, 0)
    assert store.get_flow_run(claimed.id).state == "CRASHED"
    assert [r.expected_start_time.hour for r in store.list_flow_runs(states=["LATE"])] == [14]


def test_run_forever_ticks_until_stopped(sched: Scheduler, store: SqlStore) -> None:
    deploy(store, dep(HOURLY))
    stop = threading.Event()
    calls: list[datetime] = []

    def clock() -> datetime:
        calls.append(NOW)
        if len(calls) == 2:
            stop.set()
        return NOW

    sched.run_forever(stop, interval=0.01, clock=clock)
    assert len(calls) == 2
    assert len(times(store)) == 3
