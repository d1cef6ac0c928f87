"""8 worker processes race to claim and complete 2,000 due runs under pool, queue and deployment limits.

No run may be claimed twice and no limit may ever be exceeded. Two independent checks:
- right after each of its claims commits, a worker counts the slot holders (PENDING, RUNNING, CANCELLING) in one
  consistent read; claims are the only thing that adds holders, so a count over a limit is a claim that overshot;
- each worker notes, per run, a moment just after its claim committed and one just before its completion starts:
  the real slot is held at least over that span, so spans overlapping more than a limit allows are an overshoot.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy import text

from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, WorkQueue, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

RUNS = 2000
WORKERS = 8
POOL_LIMIT = 6
QUEUE_LIMITS = {"q1": 2, "q2": 3, "default": None}
DEPLOYMENT_LIMITS = {"f/limited": 2, "f/free": None}

Span = tuple[str, str, str, float, float]  # run id, queue, deployment, claimed at, completing at
Peaks = dict[str, int]  # "pool" / "queue:NAME" / "deployment:NAME" -> most slot holders seen at once

HOLDERS = text(
    "SELECT work_queue, deployment, count(*) FROM flow_runs "
    "WHERE work_pool = 'p' AND state IN ('PENDING', 'RUNNING', 'CANCELLING') GROUP BY work_queue, deployment"
)


def _observe(store: SqlStore, peaks: Peaks) -> None:
    with store.engine.connect() as conn:
        rows = conn.execute(HOLDERS).all()
    counts: Counter[str] = Counter()
    for queue, deployment, n in rows:
        counts["pool"] += n
        counts[f"queue:{queue}"] += n
        counts[f"deployment:{deployment}"] += n
    for key, n in counts.items():
        peaks[key] = max(peaks.get(key, 0), n)


def _seed(url: str) -> None:
    store = SqlStore(url)
    store.create_work_pool(WorkPool(name="p", concurrency_limit=POOL_LIMIT))
    for priority, (queue, limit) in enumerate(QUEUE_LIMITS.items(), start=1):
        if queue != "default":
            store.create_work_queue(
                WorkQueue(work_pool="p", name=queue, priority=priority, concurrency_limit=limit)
            )
    deployments = [
        Deployment(
            flow="f", name=name.split("/")[1], entrypoint="a.py:f", work_pool="p", concurrency_limit=limit
        )
        for name, limit in DEPLOYMENT_LIMITS.items()
    ]
    changes = tuple(Change(d.key, Action.CREATE, None, attributes(d)) for d in deployments)
    store.apply(Plan(project="t", changes=changes), ApplyRecord(project="t", actor="test", summary={}))
    due = datetime.now(UTC) - timedelta(minutes=1)
    rng = random.Random(7)
    runs = []
    for i in range(RUNS):
        deployment = rng.choice(list(DEPLOYMENT_LIMITS))
        run_id = str(uuid.uuid4())
        runs.append(
            FlowRun(
                id=run_id,
                name=f"r{i}",
                flow="f",
                deployment=deployment,
                work_pool="p",
                work_queue=rng.choice(list(QUEUE_LIMITS)),
                state="SCHEDULED",
                expected_start_time=due + timedelta(milliseconds=rng.randrange(1000)),
            )
        )
    assert store.insert_scheduled_runs(runs) == RUNS
    store.close()


def _work(
    url: str, name: str, barrier: Barrier, results: multiprocessing.Queue[tuple[list[Span], Peaks]]
) -> None:
    store = SqlStore(url)
    rng = random.Random(name)
    spans: list[Span] = []
    peaks: Peaks = {}
    barrier.wait()
    while True:
        now = datetime.now(UTC)
        claimed = store.claim_runs("p", name, limit=rng.randint(1, 4), scheduled_before=now, now=now)
        claimed_at = time.monotonic()
        if claimed:
            _observe(store, peaks)
        if not claimed:
            if store.count_runs_by_state("p").get("COMPLETED", 0) == RUNS:
                break
            time.sleep(0.01)  # real workers poll every few seconds; this only keeps the race tight
            continue
        time.sleep(rng.uniform(0.002, 0.006))  # hold the slots a little, so the limits are really contended
        for run in claimed:
            completing_at = time.monotonic()
            store.set_run_state(run.id, "RUNNING", expected=["PENDING"], now=datetime.now(UTC))
            store.set_run_state(run.id, "COMPLETED", now=datetime.now(UTC))
            spans.append((run.id, run.work_queue, run.deployment, claimed_at, completing_at))
    store.close()
    results.put((spans, peaks))


def _max_overlap(spans: Iterable[Span]) -> int:
    """The most spans open at one moment (an end at the same moment as a start closes first)."""
    events = sorted(e for s in spans for e in ((s[3], 1), (s[4], -1)))
    held = peak = 0
    for _, delta in events:
        held += delta
        peak = max(peak, held)
    return peak


@pytest.mark.slow
def test_racing_workers_never_double_claim_nor_exceed_limits(store_url: str) -> None:
    _seed(store_url)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results: multiprocessing.Queue[tuple[list[Span], Peaks]] = ctx.Queue()
    procs = [ctx.Process(target=_work, args=(store_url, f"w{i}", barrier, results)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    reports = [results.get(timeout=240) for _ in procs]
    spans = [s for report in reports for s in report[0]]
    peaks: Peaks = {}
    for _, seen in reports:
        for key, n in seen.items():
            peaks[key] = max(peaks.get(key, 0), n)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    claims = Counter(s[0] for s in spans)
    assert len(claims) == RUNS and max(claims.values()) == 1, "a run was claimed twice"
    assert peaks["pool"] <= POOL_LIMIT, peaks
    for queue, limit in QUEUE_LIMITS.items():
        assert limit is None or peaks.get(f"queue:{queue}", 0) <= limit, peaks
    for deployment, limit in DEPLOYMENT_LIMITS.items():
        assert limit is None or peaks.get(f"deployment:{deployment}", 0) <= limit, peaks
    overlap = _max_overlap(spans)
    assert overlap <= POOL_LIMIT
    # Both the counts and the spans are lower bounds of what was really held at once: either reaching the
    # limit shows the race was contended (on a loaded machine one of them may just miss the moment).
    filled = max(peaks["pool"], overlap)
    assert filled == POOL_LIMIT, f"the race never filled the pool, so it proved nothing: {peaks}, {overlap}"
    for queue, limit in QUEUE_LIMITS.items():
        if limit is not None:
            assert _max_overlap(s for s in spans if s[1] == queue) <= limit, queue
    for deployment, limit in DEPLOYMENT_LIMITS.items():
        if limit is not None:
            assert _max_overlap(s for s in spans if s[2] == deployment) <= limit, deployment
    store = SqlStore(store_url)
    assert store.count_runs_by_state("p") == {"COMPLETED": RUNS}
    store.close()
