"""Claim latency with 100,000 scheduled runs in the store: prints p50 / p99 in milliseconds (target p50 ≤ 10 ms).

    python bench/runtime_claim.py                      # embedded SQLite in a temp dir
    python bench/runtime_claim.py postgresql+psycopg://postgres@127.0.0.1:5432/wp_bench

The store is filled with RUNS scheduled runs over 4 queues and 20 deployments, most of them in the future (as the
scheduler keeps them) and DUE of them due now; then CLAIMS claims of up to 5 runs are timed, each followed by the
claimed runs' completion (untimed), so slots keep freeing as on a live pool. Prints figures; asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, WorkQueue, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

RUNS = 100_000
DUE = 5_000
CLAIMS = 500
QUEUES = ("critical", "high", "low", "default")


def seed(store: SqlStore, now: datetime) -> None:
    store.create_work_pool(WorkPool(name="bench", concurrency_limit=50))
    for priority, queue in enumerate(QUEUES[:-1], start=1):
        store.create_work_queue(
            WorkQueue(work_pool="bench", name=queue, priority=priority, concurrency_limit=20)
        )
    deployments = [
        Deployment(flow="f", name=f"d{i}", entrypoint="a.py:f", work_pool="bench", concurrency_limit=10)
        for i in range(20)
    ]
    changes = tuple(Change(d.key, Action.CREATE, None, attributes(d)) for d in deployments)
    store.apply(
        Plan(project="bench", changes=changes), ApplyRecord(project="bench", actor="bench", summary={})
    )
    runs = []
    for i in range(RUNS):
        when = now - timedelta(seconds=i % 600) if i < DUE else now + timedelta(seconds=30 * (i - DUE))
        run_id = str(uuid.uuid4())
        runs.append(
            FlowRun(
                id=run_id,
                name=f"r{i}",
                flow="f",
                deployment=f"f/d{i % 20}",
                work_pool="bench",
                work_queue=QUEUES[i % len(QUEUES)],
                state="SCHEDULED",
                expected_start_time=when,
                idempotency_key=f"bench-{i}",
                schedule_slug="s",
            )
        )
    store.insert_scheduled_runs(runs)


def measure(url: str | None) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, runs claimed) of CLAIMS claims on a store seeded with RUNS runs; `url` None is a fresh
    embedded SQLite database in a temp dir, else an empty migrated database."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(url or f"sqlite:///{tmp}/wp.db")
        now = datetime.now(UTC)
        started = time.perf_counter()
        seed(store, now)
        print(f"store: {store!r}; seeded {RUNS} runs ({DUE} due) in {time.perf_counter() - started:.1f} s")
        latencies, claimed = [], 0
        for _ in range(CLAIMS):
            t0 = time.perf_counter()
            runs = store.claim_runs("bench", "w", limit=5, scheduled_before=now, now=now)
            latencies.append((time.perf_counter() - t0) * 1000)
            claimed += len(runs)
            for run in runs:
                store.set_run_state(run.id, "RUNNING", now=now)
                store.set_run_state(run.id, "COMPLETED", now=now)
        store.close()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], claimed


def main(url: str | None) -> None:
    p50, p99, claimed = measure(url)
    print(f"claim latency over {CLAIMS} claims ({claimed} runs): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"target p50 <= 10 ms: {'met' if p50 <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
