"""Figures for the worker (issue 4 targets): dispatch latency, throughput at --limit 4, worker and child RSS.

Runs a real `wp worker start` against SQLite in a temp dir. Prints figures; asserts nothing.
Usage: python bench/runtime_worker.py [N_RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore


def setup(home: Path) -> SqlStore:
    (home / "flows").mkdir()
    (home / "flows" / "trivial.py").write_text("def trivial():\n    print('done')\n")
    store = SqlStore(f"sqlite:///{home / 'wp.db'}")
    store.create_work_pool(WorkPool(name="bench", base_job_template=default_base_job_template("process")))
    d = Deployment(flow="trivial", name="b", entrypoint="flows/trivial.py:trivial", work_pool="bench")
    plan = Plan(project="bench", changes=(Change(d.key, Action.CREATE, None, attributes(d)),))
    store.apply(
        plan, ApplyRecord(project="bench", actor="bench", summary={"add": 1, "change": 0, "destroy": 0})
    )
    return store


def add_runs(store: SqlStore, n: int, at: datetime) -> list[str]:
    ids = []
    for _ in range(n):
        run_id = str(uuid.uuid4())
        store.create_flow_run(
            FlowRun(
                id=run_id,
                name=run_id[:8],
                flow="trivial",
                deployment="trivial/b",
                work_pool="bench",
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=at,
            )
        )
        ids.append(run_id)
    return ids


def wait_final(store: SqlStore, ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(store.get_flow_run(i).state in ("COMPLETED", "FAILED", "CRASHED") for i in ids):
            return
        time.sleep(0.05)
    raise SystemExit("runs did not finish in time")


def _is_entry(proc: psutil.Process) -> bool:
    """A flow-run child after exec (a child just forked still shares the worker's pages)."""
    try:
        return "reconciler.runtime.entry" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    home = Path(tempfile.mkdtemp(prefix="wp-bench-"))
    store = setup(home)
    env = {**os.environ, "WP_HOME": str(home)}
    argv = ["wp", "worker", "start", "--pool", "bench", "--limit", "4", "--name", "bench"]
    worker = subprocess.Popen(argv, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        # latency: runs due soon are prefetched, so the wait is the worker's own; spaced so slots are free
        base = datetime.now(UTC) + timedelta(seconds=2)
        latency_ids = [i for k in range(8) for i in add_runs(store, 1, base + timedelta(seconds=0.7 * k))]
        wait_final(store, latency_ids)
        latencies = []
        for run_id in latency_ids:
            run = store.get_flow_run(run_id)
            started = next(
                x for x in store.read_logs(run_id) if x.stream == "wp" and " as process " in x.message
            )
            latencies.append((started.timestamp - run.expected_start_time).total_seconds())
        t0 = time.monotonic()
        ids = add_runs(store, n, datetime.now(UTC))
        peak_worker = peak_children = 0
        while not all(store.get_flow_run(i).state in ("COMPLETED", "FAILED", "CRASHED") for i in ids):
            proc = psutil.Process(worker.pid)
            children = proc.children(recursive=True)
            peak_worker = max(peak_worker, proc.memory_info().rss)
            sizes = [c.memory_info().rss for c in children if _is_entry(c)]
            peak_children = max([peak_children, *sizes])
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        states = [store.get_flow_run(i).state for i in ids]
        print(
            f"dispatch latency p50 {statistics.median(latencies):.3f} s, "
            f"max {max(latencies):.3f} s (n={len(latencies)})"
        )
        print(f"throughput {n / elapsed:.2f} runs/s ({n} runs in {elapsed:.2f} s, --limit 4); "
              f"completed {states.count('COMPLETED')}/{n}")  # fmt: skip
        print(
            f"worker RSS peak {peak_worker / 2**20:.1f} MB; largest child RSS {peak_children / 2**20:.1f} MB"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        store.close()


if __name__ == "__main__":
    main()
