"""The server and worker process figures of issue 8, each a whole process with wp's default flags.

    python bench/server.py [--runs 5] [--only start,claim,worker]

Prints, asserting nothing (min-max over `--runs` samples where a row is sampled):
- start: `wp server start` → `/health` answers 200, on an existing (migrated) SQLite database; the server's RSS
  when idle (3 s after start, the whole process tree); seconds from SIGTERM to the process gone;
- floor: the same figures for bench/stack_floor.py, the smallest server on wp's stack (FastAPI, one route; a
  SQLAlchemy engine on SQLite; uvicorn with wp's flags): what the stack costs before wp adds anything;
- claim: claims THROUGH the HTTP API, as a worker makes them (`HttpStore.claim_runs`, one POST
  `/work_pools/{pool}/claim` each), on a pool with concurrency limit 10 and 12,000 scheduled runs in it (500 of
  them due); each claim's runs are then completed over HTTP (untimed) so slots free as on a live pool;
  p50 / p99 in milliseconds;
- worker: `wp worker start --pool bench --limit 4` against that server, 4 runs of a flow that sleeps: the
  worker's RSS and its 4 flow-run children's RSS once all 4 are running.

Needs only wp's own dependencies (`pip install .`). The figures are for this machine at its current load: run it on
a quiet machine for published figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procfs
from loopback import free_port, healthy

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

WP = str(Path(sys.executable).parent / "wp")  # --wp names another install's (e.g. to compare two versions)
MB = 2**20
POOL_RUNS = 12_000  # scheduled runs in the claimed pool
POOL_DUE = 3_000  # of them due now: enough for every claim to find work
POOL_LIMIT = 10
CLAIMS = 300
CLAIM_BATCH = 10  # a worker with --limit 10 asks for up to its free slots
CPU_TO_HEALTHY: list[float] = []


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    return env | {"WP_HOME": str(home)} | extra


def wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.005)


def wp_server(home: Path, port: int) -> list[str]:
    return [WP, "server", "start", "--port", str(port)]


def floor_server(home: Path, port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).parent / "stack_floor.py"), str(port), str(home / "floor.db")]


@contextmanager
def server(
    home: Path, command: Callable[[Path, int], list[str]] = wp_server
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """`wp server start` (or another `command(home, port)`) on `home`: (process, base URL, seconds from spawn
    to healthy). The CPU seconds the process used until then are in CPU_TO_HEALTHY (a figure less swayed by a
    loaded machine than wall time)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command(home, port),
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait(lambda: healthy(url + "/health") or proc.poll() is not None, "the server to answer /health")
        if proc.poll() is not None:
            raise SystemExit(f"wp server start exited with {proc.returncode}")
        healthy_after = time.perf_counter() - t0
        CPU_TO_HEALTHY.append(procfs.cpu_seconds(proc.pid))
        yield proc, url, healthy_after
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def span(values: list[float], unit: str, digits: int = 3) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f} {unit} (median {statistics.median(values):.{digits}f})"


def start_section(runs: int, command: Callable[[Path, int], list[str]] = wp_server) -> None:
    if command is wp_server:
        print("\n== wp server start, existing SQLite database, default flags")
    else:
        print(
            "\n== the floor: bench/stack_floor.py (FastAPI, one route; SQLAlchemy on SQLite; uvicorn, wp's flags), "
            f"run by {sys.executable}"
        )
    starts, idle, exits = [], [], []
    CPU_TO_HEALTHY.clear()
    with tempfile.TemporaryDirectory(prefix="wp-bench-server-") as tmp:
        home = Path(tmp)
        with server(home, command):  # the first start migrates: every measured one finds the database at head
            pass
        CPU_TO_HEALTHY.clear()
        for _ in range(runs):
            with server(home, command) as (proc, _url, started):
                starts.append(started)
                time.sleep(3)  # idle: let start-up work settle
                idle.append(procfs.tree_rss(proc.pid) / MB)
                t0 = time.perf_counter()
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
                exits.append(time.perf_counter() - t0)
    print(f"  start -> healthy:   {span(starts, 's')}")
    print(f"  CPU to healthy:     {span(CPU_TO_HEALTHY, 's')} (user + system)")
    print(f"  idle RSS (tree):    {span(idle, 'MB', 1)}")
    print(f"  exit on SIGTERM:    {span(exits, 's')}")


def seed(store: SqlStore, now: datetime) -> None:
    store.create_work_pool(
        WorkPool(
            name="bench", concurrency_limit=POOL_LIMIT, base_job_template=default_base_job_template("process")
        )
    )
    deployments = [
        Deployment(flow="f", name=f"d{i}", entrypoint="flows/sleepy.py:sleepy", work_pool="bench")
        for i in range(4)
    ]
    changes = tuple(Change(d.key, Action.CREATE, None, attributes(d)) for d in deployments)
    store.apply(
        Plan(project="bench", changes=changes), ApplyRecord(project="bench", actor="bench", summary={})
    )
    runs = []
    for i in range(POOL_RUNS):
        when = (
            now - timedelta(seconds=i % 600) if i < POOL_DUE else now + timedelta(seconds=30 * (i - POOL_DUE))
        )
        runs.append(
            FlowRun(
                id=str(uuid.uuid4()),
                name=f"r{i}",
                flow="f",
                deployment=f"f/d{i % 4}",
                work_pool="bench",
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=when,
                idempotency_key=f"bench-{i}",
                schedule_slug="s",
            )
        )
    store.insert_scheduled_runs(runs)


def claim_section() -> None:
    print(
        f"\n== claims through the HTTP API (HttpStore.claim_runs), pool limit {POOL_LIMIT}, "
        f"{POOL_RUNS:,} scheduled runs in the pool ({POOL_DUE} due)"
    )
    with tempfile.TemporaryDirectory(prefix="wp-bench-claim-") as tmp:
        home = Path(tmp)
        now = datetime.now(UTC)
        store = SqlStore(f"sqlite:///{home / 'wp.db'}")
        seed(store, now)
        store.close()
        with server(home) as (_proc, url, _started):
            client = HttpStore(url)
            latencies, claimed, empty = [], 0, 0
            for _ in range(CLAIMS):
                t0 = time.perf_counter()
                runs = client.claim_runs("bench", "w", limit=CLAIM_BATCH, scheduled_before=now, now=now)
                latencies.append((time.perf_counter() - t0) * 1000)
                claimed += len(runs)
                empty += not runs
                for run in runs:
                    client.set_run_state(run.id, "RUNNING", now=now)
                    client.set_run_state(run.id, "COMPLETED", now=now)
            client.close()
    latencies.sort()
    p99 = latencies[max(0, round(len(latencies) * 0.99) - 1)]
    print(
        f"  {CLAIMS} claims ({claimed} runs, {empty} empty): p50 {statistics.median(latencies):.2f} ms, "
        f"p99 {p99:.2f} ms (target p50 <= 10 ms)"
    )


def flow_children(pid: int) -> list[int]:
    return [c for c in procfs.children(pid) if "reconciler.runtime.entry" in procfs.cmdline(c)]


def worker_round(home: Path, url: str, client: HttpStore, name: str) -> tuple[float, float, float]:
    """One fresh worker with 4 running children: (worker MB, children MB, whole tree MB)."""
    worker = subprocess.Popen(
        [WP, "worker", "start", "--pool", "bench", "--limit", "4", "--name", name],
        cwd=home,
        env=env_for(home, WP_API_URL=url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ids = [create_run(client) for _ in range(4)]

    def running() -> bool:
        return len(flow_children(worker.pid)) == 4 and all(
            client.get_flow_run(i).state == "RUNNING" for i in ids
        )

    wait(running, "4 running flow-run children")
    time.sleep(1)  # let the children finish importing the flow
    sizes = (
        procfs.rss(worker.pid) / MB,
        sum(procfs.rss(c) for c in flow_children(worker.pid)) / MB,
        procfs.tree_rss(worker.pid) / MB,
    )
    # A stopping worker lets its runs finish: cancel them (the worker kills them), then stop it.
    for run_id in ids:
        client.set_run_state(run_id, "CANCELLING", now=datetime.now(UTC))
    wait(lambda: all(client.get_flow_run(i).state == "CANCELLED" for i in ids), "the runs to cancel")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    return sizes


def worker_section(runs: int) -> None:
    print("\n== wp worker start --pool bench --limit 4 against the server, 4 sleeping runs")
    samples = []
    with tempfile.TemporaryDirectory(prefix="wp-bench-worker-") as tmp:
        home = Path(tmp)
        (home / "flows").mkdir()
        (home / "flows" / "sleepy.py").write_text("import time\n\n\ndef sleepy():\n    time.sleep(600)\n")
        with server(home) as (_proc, url, _started):
            client = HttpStore(url)
            seed_small(client)
            samples = [worker_round(home, url, client, f"w{n}") for n in range(runs)]
            client.close()
    workers, children, totals = (list(column) for column in zip(*samples, strict=True))
    print(f"  worker RSS:                    {span(workers, 'MB', 1)}")
    print(f"  4 flow-run children RSS (sum): {span(children, 'MB', 1)}")
    print(f"  worker + 4 children (tree):    {span(totals, 'MB', 1)} (target <= 100 MB)")


def seed_small(client: HttpStore) -> None:
    client.create_work_pool(WorkPool(name="bench", base_job_template=default_base_job_template("process")))
    d = Deployment(flow="sleepy", name="b", entrypoint="flows/sleepy.py:sleepy", work_pool="bench")
    plan = Plan(project="bench", changes=(Change(d.key, Action.CREATE, None, attributes(d)),))
    client.apply(plan, ApplyRecord(project="bench", actor="bench", summary={"add": 1}))


def create_run(client: HttpStore) -> str:
    run_id = str(uuid.uuid4())
    client.create_flow_run(
        FlowRun(
            id=run_id,
            name=run_id[:8],
            flow="sleepy",
            deployment="sleepy/b",
            work_pool="bench",
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC),
        )
    )
    return run_id


def main() -> None:
    global WP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="samples per sampled row")
    parser.add_argument("--only", default="start,floor,claim,worker", help="sections to run, comma-separated")
    parser.add_argument("--wp", default=WP, help="the wp executable to measure (default: this venv's)")
    args = parser.parse_args()
    WP = args.wp
    sections = set(args.only.split(","))
    load = os.getloadavg()[0]
    print(f"{WP}: server and worker figures; load average {load:.1f} on {os.cpu_count()} CPUs")
    if "start" in sections:
        start_section(args.runs)
    if "floor" in sections:
        start_section(args.runs, floor_server)
    if "claim" in sections:
        claim_section()
    if "worker" in sections:
        worker_section(args.runs)


if __name__ == "__main__":
    main()
