"""SqlRuns on SQLite and PostgreSQL: runs, state changes, the claim's waterfall and limits, workers, logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.engine.plan import Action, Change, Plan
from reconciler.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from reconciler.model import Deployment, FlowRun, LogLine, WorkPool, WorkQueue, attributes, key_of
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def deploy(store: SqlStore, *deployments: Deployment) -> None:
    changes = []
    for d in deployments:
        changes.append(Change(d.key, Action.CREATE, None, attributes(d)))
        changes += [Change(key_of(s, d), Action.CREATE, None, attributes(s)) for s in d.schedules]
    store.apply(Plan(project="t", changes=tuple(changes)), ApplyRecord(project="t", actor="test", summary={}))


def run(
    deployment: str = "f/d",
    pool: str = "p",
    queue: str = "default",
    at: datetime = NOW,
    state: str = "SCHEDULED",
    **extra: object,
) -> FlowRun:
    run_id = str(uuid.uuid4())
    fields: dict[str, object] = {
        "id": run_id,
        "name": f"run-{run_id[:6]}",
        "flow": deployment.split("/")[0],
        "deployment": deployment,
        "work_pool": pool,
        "work_queue": queue,
        "state": state,
        "expected_start_time": at,
        **extra,
    }
    return FlowRun.model_validate(fields)


@pytest.fixture
def pool(store: SqlStore) -> SqlStore:
    """Pool `p` with queues critical (1), high (5), low (10) besides `default`."""
    store.create_work_pool(WorkPool(name="p"))
    for name, priority in (("critical", 1), ("high", 5), ("low", 10)):
        store.create_work_queue(WorkQueue(work_pool="p", name=name, priority=priority))
    return store


def claim(store: SqlStore, limit: int = 10, worker: str = "w1", **kw: object) -> list[FlowRun]:
    return store.claim_runs(
        "p", worker, limit=limit, scheduled_before=NOW + timedelta(seconds=10), now=NOW, **kw
    )  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- runs and states


def test_create_get_and_list_runs(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))
    first = store.create_flow_run(run(at=NOW, parameters={"x": 1}))
    store.create_flow_run(run(at=NOW - timedelta(minutes=1), state="COMPLETED"))
    got = store.get_flow_run(first.id)
    assert got.parameters == {"x": 1}
    assert got.expected_start_time == NOW
    assert [r.state for r in store.list_flow_runs(work_pool="p")] == ["COMPLETED", "SCHEDULED"]
    assert [r.id for r in store.list_flow_runs(states=["scheduled"])] == [first.id]
    with pytest.raises(NotFoundError, match="not found"):
        store.get_flow_run("nope")
    with pytest.raises(ValidationError, match="unknown run state 'DONE'"):
        store.list_flow_runs(states=["DONE"])


def test_same_idempotency_key_returns_the_existing_run(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))
    first = store.create_flow_run(run(idempotency_key="k1"))
    second = store.create_flow_run(run(idempotency_key="k1"))
    assert second.id == first.id
    assert len(store.list_flow_runs()) == 1


def test_state_changes_follow_the_transition_table(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))
    r = store.create_flow_run(run())
    pending = store.set_run_state(r.id, "PENDING", now=NOW)
    running = store.set_run_state(r.id, "RUNNING", expected=["PENDING"], now=NOW + timedelta(seconds=1))
    assert running.start_time == NOW + timedelta(seconds=1) and running.run_count == 1
    with pytest.raises(ConflictError, match="is RUNNING, not PENDING"):
        store.set_run_state(r.id, "RUNNING", expected=["PENDING"], now=NOW)
    done = store.set_run_state(r.id, "COMPLETED", now=NOW + timedelta(seconds=5))
    assert done.end_time == NOW + timedelta(seconds=5)
    assert store.get_flow_run(r.id).state == "COMPLETED"
    with pytest.raises(InvalidTransitionError, match="cannot become RUNNING"):
        store.set_run_state(r.id, "RUNNING", now=NOW)
    with pytest.raises(ValidationError, match="unknown run state"):
        store.set_run_state(r.id, "FINISHED", now=NOW)
    assert pending.state == "PENDING"


# ---------------------------------------------------------------------------------------------- claiming


def test_waterfall_by_priority_then_time_then_id(pool: SqlStore) -> None:
    low = pool.create_flow_run(run(queue="low", at=NOW - timedelta(hours=1)))
    high_late = pool.create_flow_run(run(queue="high", at=NOW))
    high_early = pool.create_flow_run(run(queue="high", at=NOW - timedelta(minutes=5)))
    crit = pool.create_flow_run(run(queue="critical", at=NOW))
    got = claim(pool, limit=3)
    assert [r.id for r in got] == [crit.id, high_early.id, high_late.id]
    assert all(r.state == "PENDING" and r.worker == "w1" for r in got)
    assert [r.id for r in claim(pool, limit=3)] == [low.id]
    assert claim(pool) == []


def test_runs_at_the_same_time_go_by_id(pool: SqlStore) -> None:
    ids = sorted(pool.create_flow_run(run(queue="high")).id for _ in range(5))
    assert [r.id for r in claim(pool, limit=5)] == ids


def test_pool_limit_five_with_three_active_hands_out_two(pool: SqlStore) -> None:
    pool.update_work_pool("p", concurrency_limit=5)
    for state in ("PENDING", "RUNNING", "CANCELLING"):
        pool.create_flow_run(run(state=state, queue="low"))
    for _ in range(6):
        pool.create_flow_run(run(queue="high"))
    assert len(claim(pool, limit=10)) == 2
    assert claim(pool, limit=10) == []


def test_queue_limit_caps_only_its_queue(pool: SqlStore) -> None:
    pool.update_work_queue("p", "critical", concurrency_limit=1)
    pool.create_flow_run(run(queue="critical", state="RUNNING"))
    pool.create_flow_run(run(queue="critical"))
    lows = [pool.create_flow_run(run(queue="low")) for _ in range(2)]
    assert [r.id for r in claim(pool)] == sorted(r.id for r in lows)


def test_paused_pool_delivers_nothing_and_paused_queue_is_skipped(pool: SqlStore) -> None:
    crit = pool.create_flow_run(run(queue="critical"))
    low = pool.create_flow_run(run(queue="low"))
    pool.update_work_pool("p", paused=True)
    assert claim(pool) == []
    pool.update_work_pool("p", paused=False)
    pool.update_work_queue("p", "critical", paused=True)
    assert [r.id for r in claim(pool)] == [low.id]
    assert pool.get_flow_run(crit.id).state == "SCHEDULED"


def test_a_later_run_on_a_higher_priority_queue_goes_first_next_poll(pool: SqlStore) -> None:
    lows = [pool.create_flow_run(run(queue="low", at=NOW - timedelta(minutes=10 - i))) for i in range(3)]
    assert [r.id for r in claim(pool, limit=1)] == [lows[0].id]
    crit = pool.create_flow_run(run(queue="critical", at=NOW))
    assert [r.id for r in claim(pool, limit=1)] == [crit.id]


def test_deployment_concurrency_limit_holds_across_queues(pool: SqlStore) -> None:
    deploy(pool, Deployment(flow="f", name="d", entrypoint="a.py:f", work_pool="p", concurrency_limit=2))
    pool.create_flow_run(run(queue="low", state="RUNNING"))
    limited = [pool.create_flow_run(run(queue="critical", at=NOW - timedelta(minutes=i))) for i in range(3)]
    other = pool.create_flow_run(run(deployment="g/e", queue="high"))
    got = claim(pool)
    assert [r.id for r in got] == [limited[2].id, other.id]


def test_only_due_runs_of_the_named_queues_are_claimed(pool: SqlStore) -> None:
    pool.create_flow_run(run(queue="high", at=NOW + timedelta(minutes=5)))
    due_low = pool.create_flow_run(run(queue="low"))
    pool.create_flow_run(run(queue="critical"))
    assert [r.id for r in claim(pool, work_queues=["low", "high"])] == [due_low.id]
    with pytest.raises(
        NotFoundError, match="work queue nope not found in pool 'p'; its queues are: critical"
    ):
        claim(pool, work_queues=["nope"])
    with pytest.raises(NotFoundError, match="work pool 'zz' not found"):
        pool.claim_runs("zz", "w", limit=1, scheduled_before=NOW, now=NOW)


def test_claim_records_the_poll_on_the_queues(pool: SqlStore) -> None:
    assert pool.work_queue_status("p", "low", NOW) == "NOT_READY"
    claim(pool, work_queues=["low"])
    assert pool.work_queue_status("p", "low", NOW) == "READY"
    assert pool.work_queue_status("p", "high", NOW) == "NOT_READY"


def test_late_runs_are_marked_and_still_claimed(pool: SqlStore) -> None:
    old = pool.create_flow_run(run(queue="low", at=NOW - timedelta(seconds=20)))
    fresh = pool.create_flow_run(run(queue="low", at=NOW - timedelta(seconds=10)))
    assert pool.mark_late_runs(NOW) == 1
    assert pool.get_flow_run(old.id).state == "LATE"
    assert pool.get_flow_run(fresh.id).state == "SCHEDULED"
    assert pool.mark_late_runs(NOW) == 0
    assert [r.id for r in claim(pool)] == [old.id, fresh.id]


def test_claim_reads_few_rows_with_many_runs_scheduled(pool: SqlStore) -> None:
    base = NOW + timedelta(minutes=1)
    pool.insert_scheduled_runs([run(queue="low", at=base + timedelta(seconds=i)) for i in range(3000)])
    due = [pool.create_flow_run(run(queue="low", at=NOW - timedelta(seconds=i))) for i in range(3)]
    assert {r.id for r in claim(pool)} == {r.id for r in due}


# ---------------------------------------------------------------------------------------------- workers


def test_heartbeat_and_worker_status(pool: SqlStore) -> None:
    pool.heartbeat_worker("p", "w1", interval=10, now=NOW)
    pool.heartbeat_worker("p", "w2", interval=10, now=NOW - timedelta(seconds=31))
    assert [(w.name, w.status) for w in pool.list_workers("p", NOW)] == [("w1", "ONLINE"), ("w2", "OFFLINE")]
    with pytest.raises(NotFoundError, match="work pool 'zz' not found"):
        pool.heartbeat_worker("zz", "w", interval=10, now=NOW)


def test_dead_worker_loses_its_claims_and_frees_slots(pool: SqlStore) -> None:
    pool.update_work_pool("p", concurrency_limit=2)
    pool.heartbeat_worker("p", "dead", interval=10, now=NOW - timedelta(seconds=100))
    pool.heartbeat_worker("p", "alive", interval=10, now=NOW)
    a, b = (pool.create_flow_run(run(queue="low", at=NOW - timedelta(seconds=i))) for i in (2, 1))
    [first] = claim(pool, limit=1, worker="dead")
    [second] = claim(pool, limit=1, worker="dead")
    pool.set_run_state(first.id, "RUNNING", now=NOW)
    assert claim(pool, worker="alive") == []
    assert pool.recover_dead_workers(NOW + timedelta(seconds=1)) == {
        "workers": 1,
        "requeued": 1,
        "crashed": 1,
    }
    assert pool.get_flow_run(a.id).state == "CRASHED"
    back = pool.get_flow_run(b.id)
    assert back.state == "SCHEDULED" and back.worker is None
    assert [r.id for r in claim(pool, worker="alive")] == [b.id]
    assert pool.recover_dead_workers(NOW + timedelta(seconds=2))["requeued"] == 0
    assert second.id == b.id


# ---------------------------------------------------------------------------------------------- scheduler support


def test_insert_scheduled_runs_is_idempotent(store: SqlStore) -> None:
    runs = [
        run(idempotency_key=f"f/d#s@{i}", schedule_slug="s", at=NOW + timedelta(hours=i)) for i in range(3)
    ]
    assert store.insert_scheduled_runs(runs) == 3
    again = [r.model_copy(update={"id": str(uuid.uuid4())}) for r in runs]
    assert store.insert_scheduled_runs(again) == 0
    assert store.scheduled_run_times("f/d", after=NOW + timedelta(minutes=30)) == {
        "s": {NOW + timedelta(hours=1), NOW + timedelta(hours=2)}
    }


def test_delete_scheduled_runs_touches_only_changed_schedules_future_unclaimed(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))

    def make(slug: str, hours: int, state: str = "SCHEDULED") -> FlowRun:
        return run(
            schedule_slug=slug, idempotency_key=f"{slug}{hours}", at=NOW + timedelta(hours=hours), state=state
        )

    store.insert_scheduled_runs(
        [make("a", 1), make("a", 2), make("a", -1), make("a", 3, "PENDING"), make("b", 1), make("b", 2)]
    )
    manual = store.create_flow_run(run(at=NOW + timedelta(hours=1)))
    assert store.delete_scheduled_runs("f/d", ["a"], NOW) == 2
    left = store.list_flow_runs(deployment="f/d")
    assert sorted((r.schedule_slug or "-", r.state) for r in left) == [
        ("-", "SCHEDULED"),
        ("a", "PENDING"),
        ("a", "SCHEDULED"),
        ("b", "SCHEDULED"),
        ("b", "SCHEDULED"),
    ]
    assert manual.id in {r.id for r in left}


def test_count_runs_by_state(pool: SqlStore) -> None:
    for state, queue in (("SCHEDULED", "low"), ("SCHEDULED", "high"), ("RUNNING", "low")):
        pool.create_flow_run(run(queue=queue, state=state))
    assert pool.count_runs_by_state("p") == {"SCHEDULED": 2, "RUNNING": 1}
    assert pool.count_runs_by_state("p", "low") == {"SCHEDULED": 1, "RUNNING": 1}


# ---------------------------------------------------------------------------------------------- logs


def test_logs_are_numbered_in_order_and_read_after_a_seq(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))
    r = store.create_flow_run(run())
    store.append_logs([LogLine(run_id=r.id, timestamp=NOW, message=f"line {i}") for i in range(3)])
    store.append_logs([LogLine(run_id=r.id, timestamp=NOW, message="line 3", stream="stderr")])
    lines = store.read_logs(r.id)
    assert [(ln.seq, ln.message) for ln in lines] == [
        (0, "line 0"),
        (1, "line 1"),
        (2, "line 2"),
        (3, "line 3"),
    ]
    assert [ln.message for ln in store.read_logs(r.id, after_seq=1, limit=1)] == ["line 2"]
    with pytest.raises(NotFoundError, match="cannot store its logs"):
        store.append_logs([LogLine(run_id="nope", timestamp=NOW, message="x")])


def test_the_unfiltered_runs_page_reads_an_index_not_the_whole_table(store: SqlStore) -> None:
    """The web UI's runs page, newest first: an index on (expected_start_time, id) walks it backwards instead
    of sorting every run (EXPLAIN on each backend)."""
    from sqlalchemy import select, text

    from reconciler.store.tables import flow_runs

    query = (
        select(flow_runs).order_by(flow_runs.c.expected_start_time.desc(), flow_runs.c.id.desc()).limit(51)
    )
    with store.engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if store.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "ix_flow_runs_expected_start_time_id" in plan and "TEMP B-TREE" not in plan, plan
        else:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: make the planner show the path
            plan = " ".join(str(row[0]) for row in conn.execute(text("EXPLAIN " + sql)))
            assert "ix_flow_runs_expected_start_time_id" in plan and "Sort" not in plan, plan
