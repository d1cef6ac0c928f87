"""The worker records each run's infrastructure id and, restarted under the same name, takes back its runs:
those it can follow again are followed, the others end at once instead of staying held by a live worker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from test_worker import add_deployment, add_run, make_worker, project, store  # noqa: F401

from reconciler.store.sql import SqlStore


def test_the_run_records_its_infrastructure_id(store: SqlStore, project: Path) -> None:  # noqa: F811
    run = add_run(store, add_deployment(store, "hello"))
    make_worker(store, project, run_once=True)[0].run()
    done = store.get_flow_run(run.id)
    assert done.state == "COMPLETED"
    assert done.infrastructure_id is not None and done.infrastructure_id.isdigit()  # the pid


def test_a_restarted_worker_ends_runs_it_cannot_follow_and_hands_back_unstarted_ones(
    store: SqlStore,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    deployment = add_deployment(store, "hello")
    running, unstarted = add_run(store, deployment), add_run(store, deployment)
    now = datetime.now(UTC)
    store.heartbeat_worker("local", "w1", interval=30, now=now)
    store.claim_runs("local", "w1", limit=2, scheduled_before=now, now=now)
    store.set_run_state(running.id, "RUNNING", now=now)
    store.set_run_infrastructure(running.id, "999999999")  # a process of the worker's earlier life
    worker, _ = make_worker(store, project)
    worker.setup()  # a process executor cannot follow a child of another process
    lost = store.get_flow_run(running.id)
    assert lost.state == "CRASHED"
    assert "could not follow its process 999999999" in (lost.state_message or "")
    handed_back = store.get_flow_run(unstarted.id)
    assert handed_back.state == "SCHEDULED" and "restarted before starting it" in (
        handed_back.state_message or ""
    )
