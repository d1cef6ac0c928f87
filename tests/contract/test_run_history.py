"""A run's state history and the workers' host, pid and runs in hand, on every store (SQLite, PostgreSQL, HTTP)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_store_contract import seed
from test_store_integrity import SOON, add_run

from reconciler.errors import ConflictError, InvalidTransitionError, NotFoundError
from reconciler.store.sql import SqlStore

LATER = SOON + timedelta(minutes=1)


def steps(store: SqlStore, run_id: str) -> list[tuple[str | None, str, str | None]]:
    return [(c.from_state, c.to_state, c.actor) for c in store.read_run_history(run_id)]


def test_every_state_change_of_a_run_is_kept_in_order_with_its_actor_and_message(store: SqlStore) -> None:
    seed(store)
    run_id = add_run(store)
    assert store.read_run_history(run_id) == []  # creation is the run's `created`, not a change
    [claimed] = store.claim_runs("prod", "w1", limit=1, scheduled_before=LATER, now=SOON)
    assert claimed.id == run_id
    store.set_run_state(run_id, "RUNNING", now=SOON + timedelta(seconds=1), actor="worker w1")
    store.set_run_state(
        run_id, "FAILED", message="exit code 3", now=SOON + timedelta(seconds=2), actor="worker w1"
    )
    history = store.read_run_history(run_id)
    assert steps(store, run_id) == [
        ("SCHEDULED", "PENDING", "worker w1"),
        ("PENDING", "RUNNING", "worker w1"),
        ("RUNNING", "FAILED", "worker w1"),
    ]
    assert [c.timestamp for c in history] == [SOON, SOON + timedelta(seconds=1), SOON + timedelta(seconds=2)]
    assert history[-1].message == "exit code 3"
    assert {c.run_id for c in history} == {run_id}


def test_a_refused_change_leaves_no_trace_in_the_history(store: SqlStore) -> None:
    seed(store)
    run_id = add_run(store)
    with pytest.raises(ConflictError):
        store.set_run_state(run_id, "CANCELLED", expected=["RUNNING"], now=SOON)
    with pytest.raises(InvalidTransitionError):
        store.set_run_state(run_id, "COMPLETED", now=SOON)
    assert store.read_run_history(run_id) == []
    store.set_run_state(run_id, "CANCELLED", expected=["SCHEDULED"], now=SOON, actor="me@host")
    assert steps(store, run_id) == [("SCHEDULED", "CANCELLED", "me@host")]


def test_late_marks_and_dead_worker_recovery_are_in_the_history(store: SqlStore) -> None:
    seed(store)
    late_id = add_run(store)
    assert store.mark_late_runs(SOON + timedelta(minutes=5)) == 1
    assert steps(store, late_id) == [("SCHEDULED", "LATE", "scheduler")]
    store.heartbeat_worker("prod", "w1", interval=1.0, now=SOON)
    [claimed] = store.claim_runs("prod", "w1", limit=1, scheduled_before=LATER, now=SOON)
    store.set_run_state(claimed.id, "RUNNING", now=SOON, actor="worker w1")
    assert store.recover_dead_workers(SOON + timedelta(minutes=1))["crashed"] == 1
    history = store.read_run_history(late_id)
    assert steps(store, late_id)[-1] == ("RUNNING", "CRASHED", "dead-worker recovery")
    assert history[-1].message == "crashed: its worker stopped sending heartbeats"


def test_the_history_of_an_unknown_run_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="flow run 'nope' not found"):
        store.read_run_history("nope")


def test_workers_report_host_and_pid_and_the_store_counts_their_runs_in_hand(store: SqlStore) -> None:
    seed(store)
    add_run(store)
    add_run(store)
    store.heartbeat_worker("prod", "w1", interval=30.0, now=SOON, host="box-1", pid=4242)
    store.heartbeat_worker("prod", "w2", interval=30.0, now=SOON)
    store.claim_runs("prod", "w1", limit=2, scheduled_before=LATER, now=SOON)
    workers = {w.name: w for w in store.list_workers("prod", SOON)}
    assert (workers["w1"].host, workers["w1"].pid, workers["w1"].runs_in_hand) == ("box-1", 4242, 2)
    assert (workers["w2"].host, workers["w2"].pid, workers["w2"].runs_in_hand) == (None, None, 0)
    store.heartbeat_worker("prod", "w1", interval=30.0, now=SOON, host="box-2", pid=7)
    w1 = next(w for w in store.list_workers("prod", SOON) if w.name == "w1")
    assert (w1.host, w1.pid) == ("box-2", 7)  # a restarted worker of the same name reports its new place


def test_a_run_deleted_with_its_deployment_takes_its_history_along(store: SqlStore) -> None:
    seed(store)
    run_id = add_run(store)
    store.mark_late_runs(SOON + timedelta(minutes=5))
    assert len(store.read_run_history(run_id)) == 1
    store.delete_deployment("etl", "nightly")  # its waiting runs go with it, history rows included
    with pytest.raises(NotFoundError):
        store.read_run_history(run_id)
