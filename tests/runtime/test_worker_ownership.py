"""A worker that learns a run it holds was taken from it (CRASHED by the server's dead-worker recovery, or
handed to another worker) stops that run's infrastructure: the slot the store freed must really be free."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from test_worker import (  # noqa: F401
    add_deployment,
    add_run,
    infrastructure_pid,
    logs,
    make_worker,
    pid_alive,
    project,
    store,
    wait_for,
)

from reconciler.store.sql import SqlStore


def test_a_run_crashed_behind_the_workers_back_has_its_process_stopped(
    store: SqlStore,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    run = add_run(store, add_deployment(store, "sleepy"))
    worker, out = make_worker(store, project, heartbeat_interval=0.5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "sleeping" in logs(store, run.id))
        pid = infrastructure_pid(store, run.id)
        # what the server's recovery does to a worker it believes dead
        store.set_run_state(
            run.id, "CRASHED", message="crashed: its worker stopped sending heartbeats", now=datetime.now(UTC)
        )
        wait_for(lambda: not pid_alive(pid), timeout=10)
        wait_for(lambda: run.id not in worker._active, timeout=10)
    finally:
        worker.request_stop()
        thread.join(timeout=15)
    assert not thread.is_alive()
    final = store.get_flow_run(run.id)
    assert final.state == "CRASHED"
    assert "heartbeats" in (final.state_message or "")  # the store's verdict stands
    assert any("no longer holds" in line for line in logs(store, run.id)), logs(store, run.id)
    assert "no longer holds" in out.getvalue()


def test_a_run_handed_to_another_worker_has_its_process_stopped(
    store: SqlStore,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    run = add_run(store, add_deployment(store, "sleepy"))
    worker, out = make_worker(store, project, heartbeat_interval=0.5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "sleeping" in logs(store, run.id))
        pid = infrastructure_pid(store, run.id)
        now = datetime.now(UTC)
        # recovered as PENDING-then-requeued and claimed by w2 (the store's view: another worker holds it)
        with store.transaction() as conn:
            from reconciler.store.tables import flow_runs

            conn.execute(flow_runs.update().where(flow_runs.c.id == run.id).values(worker="w2", updated=now))
        wait_for(lambda: not pid_alive(pid), timeout=10)
    finally:
        worker.request_stop()
        thread.join(timeout=15)
    assert not thread.is_alive()
    final = store.get_flow_run(run.id)
    assert final.worker == "w2" and final.state == "RUNNING"  # w1 must not end w2's run
    assert "no longer holds" in out.getvalue()
