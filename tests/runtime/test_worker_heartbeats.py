"""A busy worker goes on heartbeating. A server judges a worker dead after 3 of its heartbeat intervals without
one and crashes its runs; one turn of the worker's loop may start many runs (each a read of its inputs, a process
and a write) against a slow store, so heartbeats must go on within a turn, not only between turns. Found on a
loaded machine: a worker with `--heartbeat-interval 1` starting 5 runs was judged dead before it had reported
them RUNNING (tests/e2e/test_outages.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from test_worker import add_deployment, add_run, make_worker, project  # noqa: F401

from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import WorkPool
from reconciler.store.base import RunInputs
from reconciler.store.sql import SqlStore

INTERVAL = 0.2  # the worker's heartbeat interval
SLOW = 0.15  # what reading one run's inputs takes through this store: a loaded machine, a far-away server
RUNS = 8


class SlowStore(SqlStore):
    """A real SQLite store whose reads of a run's inputs are slow; it records the order of the worker's
    heartbeats and those reads."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: list[str] = []

    def heartbeat_worker(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("heartbeat")
        return super().heartbeat_worker(*args, **kwargs)

    def run_inputs(self, run_id: str, worker: str) -> RunInputs:
        self.calls.append("inputs")
        time.sleep(SLOW)
        return super().run_inputs(run_id, worker)


def test_a_worker_starting_many_runs_in_one_turn_keeps_heartbeating(
    tmp_path: Path,
    project: Path,  # noqa: F811
) -> None:
    store = SlowStore(f"sqlite:///{tmp_path / 'wp.db'}")
    try:
        store.create_work_pool(
            WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))
        )
        deployment = add_deployment(store, "hello")
        runs = [add_run(store, deployment) for _ in range(RUNS)]
        worker, out = make_worker(store, project, run_once=True, heartbeat_interval=INTERVAL)
        worker.run()  # one poll claims all of them; one turn starts all of them
        assert {store.get_flow_run(r.id).state for r in runs} == {"COMPLETED"}, out.getvalue()
        reads = [i for i, call in enumerate(store.calls) if call == "inputs"]
        assert len(reads) == RUNS
        # Each read takes SLOW: after two of them an interval has passed, and the worker's next store call is
        # preceded by a heartbeat. Without heartbeats within a turn, all 8 reads (1.2 s, 6 intervals) had none.
        during = ",".join(store.calls[reads[0] : reads[-1] + 1])
        assert "inputs,inputs,inputs" not in during, store.calls
    finally:
        store.close()
