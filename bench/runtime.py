"""Every runtime figure of issue 4 in one run, each next to its target and to the system wp models.

    python bench/runtime.py [N_RUNS] [--poll-interval S]   # N_RUNS trivial runs per throughput figure (40)

Workers run with wp's default flags except `--limit 4` (and `--poll-interval` only when given), so the figures
are what a user measures. Needs only wp's own dependencies (`pip install .`).

Prints, asserting nothing:
- claim latency p50/p99 with 100,000 scheduled runs in the store: embedded SQLite, and PostgreSQL when
  WP_TEST_POSTGRES_URL is set (a fresh database is created there and dropped afterwards);
- through a real `wp server start` (embedded SQLite behind it) and real `wp worker start` processes over HTTP:
  dispatch latency (expected start → process started) p50/p99 for runs due ahead of time and for runs due
  the moment they are created (an idle worker: what a user triggering a run waits for), throughput of trivial runs with 1 worker at
  --limit 4 and with 4 workers at --limit 4, worker, flow-run child and server RSS;
- the same 4-worker load straight on the embedded SQLite file (no server, 4 processes writing), and whether
  any process logged `database is locked`.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procfs
import runtime_claim
from loopback import free_port, healthy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord, Store
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[1]
WP = str(Path(sys.executable).parent / "wp")
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
MB = 2**20
POLL_INTERVAL: str | None = None  # the workers' --poll-interval; None: wp's default, as a user runs it
# The modelled system's figures (issue 4): poll at 12k scheduled runs, trivial runs/s with a 4-slot process
# worker, that worker's RSS.
MODELLED_POLL_MS = 420.0
MODELLED_RUNS_PER_S = 0.3
MODELLED_WORKER_MB = 440.0


def env_for(**extra: str) -> dict[str, str]:
    """The outside environment without wp's variables, the working tree's code first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | extra


rss = procfs.rss


def is_flow_child(pid: int) -> bool:
    """A flow-run child after exec (one just forked still shares the worker's pages)."""
    return "reconciler.runtime.entry" in procfs.cmdline(pid)


@dataclass
class Peaks:
    """Largest RSS seen of the workers, their flow-run children and the server."""

    worker: int = 0
    child: int = 0
    server: int = 0

    def sample(self, workers: list[subprocess.Popen[bytes]], server: int | None) -> None:
        for worker in workers:
            self.worker = max(self.worker, rss(worker.pid))
            children = procfs.children(worker.pid)
            self.child = max([self.child, *(rss(c) for c in children if is_flow_child(c))])
        if server is not None:
            self.server = max(self.server, rss(server))


@dataclass
class Bench:
    """One project directory with a trivial flow, a store, and the processes started on it."""

    home: Path
    env: dict[str, str]  # what the workers get: WP_API_URL or WP_HOME
    store: Store
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_workers(self, count: int, tag: str) -> None:
        for i in range(count):
            name = f"{tag}-{i}"
            argv = [WP, "worker", "start", "--pool", "bench", "--limit", "4", "--name", name]
            if POLL_INTERVAL is not None:
                argv += ["--poll-interval", POLL_INTERVAL]
            log = (self.home / f"{name}.log").open("w")
            self.workers.append(
                subprocess.Popen(argv, cwd=self.home, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )
        names = {f"{tag}-{i}" for i in range(count)}
        wait(lambda: names <= online(self.store), f"{count} worker(s) to come online")

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.wait(timeout=60)
        self.workers = []

    def logs_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.home.glob("*.log"))


def online(store: Store) -> set[str]:
    return {w.name for w in store.list_workers("bench", datetime.now(UTC)) if w.status == "ONLINE"}


def wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def prepare(home: Path, store: Store) -> None:
    (home / "flows").mkdir(exist_ok=True)
    (home / "flows" / "trivial.py").write_text("def trivial():\n    print('done')\n")
    store.create_work_pool(WorkPool(name="bench", base_job_template=default_base_job_template("process")))
    d = Deployment(flow="trivial", name="b", entrypoint="flows/trivial.py:trivial", work_pool="bench")
    plan = Plan(project="bench", changes=(Change(d.key, Action.CREATE, None, attributes(d)),))
    store.apply(plan, ApplyRecord(project="bench", actor="bench", summary={"add": 1}))


def add_runs(store: Store, times: list[datetime]) -> list[str]:
    ids = []
    for at in times:
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


def run_all(bench: Bench, times: list[datetime], peaks: Peaks) -> tuple[list[str], float]:
    """Create runs at `times`, sample RSS until every one is final; (ids, seconds taken)."""
    t0 = time.monotonic()
    ids = add_runs(bench.store, times)
    pending = set(ids)
    deadline = t0 + 300
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} runs did not finish in 300 s")
        peaks.sample(bench.workers, bench.server.pid if bench.server else None)
        final = {r.id for r in bench.store.list_flow_runs(states=FINAL, work_pool="bench", limit=10_000)}
        pending -= final
        time.sleep(0.05)
    return ids, time.monotonic() - t0


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(len(ordered) * 0.99) - 1)]


def dispatch_latencies(bench: Bench) -> list[float]:
    """Runs due 2 s from now and after, spaced so slots are free: the wait is the worker's own."""
    base = datetime.now(UTC) + timedelta(seconds=2)
    ids, _ = run_all(bench, [base + timedelta(seconds=0.25 * k) for k in range(24)], Peaks())
    latencies = []
    for run_id in ids:
        run = bench.store.get_flow_run(run_id)
        started = next(x for x in bench.store.read_logs(run_id) if " as process " in x.message)
        latencies.append((started.timestamp - run.expected_start_time).total_seconds())
    return latencies


def dispatch_now_latencies(bench: Bench, count: int = 12) -> list[float]:
    """Runs created due now, one at a time with the worker idle: creation -> process started. This is what a
    user triggering a run waits for."""
    latencies = []
    for _ in range(count):
        created = datetime.now(UTC)
        (run_id,) = add_runs(bench.store, [created])
        wait(
            lambda r=run_id: bench.store.get_flow_run(r).state in FINAL, "a run due now to finish", timeout=60
        )
        started = next(x for x in bench.store.read_logs(run_id) if " as process " in x.message)
        latencies.append((started.timestamp - created).total_seconds())
    return latencies


def throughput(bench: Bench, n: int, peaks: Peaks) -> tuple[float, int]:
    ids, elapsed = run_all(bench, [datetime.now(UTC)] * n, peaks)
    completed = sum(bench.store.get_flow_run(i).state == "COMPLETED" for i in ids)
    return n / elapsed, completed


# ---------------------------------------------------------------------------------------------- sections


@contextmanager
def served(home: Path) -> Iterator[Bench]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [WP, "server", "start", "--port", str(port), "--log-level", "warning"]
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        argv, cwd=home, env=env_for(WP_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT
    )

    wait(lambda: healthy(f"{url}/health"), "the wp server", timeout=60)
    store = HttpStore(url)
    bench = Bench(home, env_for(WP_API_URL=url), store, server)
    try:
        prepare(home, store)
        yield bench
    finally:
        bench.stop_workers()
        server.send_signal(signal.SIGTERM)
        print(f"  server exit code on SIGTERM: {server.wait(timeout=60)}")
        store.close()


def claim_section() -> None:
    print("\n== claim latency, 100,000 scheduled runs in the store (target p50 <= 10 ms)")
    p50, p99, _ = runtime_claim.measure(None)
    print(f"  SQLite:     p50 {p50:.2f} ms, p99 {p99:.2f} ms  (modelled system polls in {MODELLED_POLL_MS:.0f} ms "
          f"at 12k runs: {MODELLED_POLL_MS / p50:.0f}x faster at 8x the runs)")  # fmt: skip
    admin = os.environ.get("WP_TEST_POSTGRES_URL")
    if not admin:
        print("  PostgreSQL: skipped (set WP_TEST_POSTGRES_URL to a role that may CREATE DATABASE)")
        return
    admin_url = SqlStore(admin).url
    name = f"wp_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        p50, p99, _ = runtime_claim.measure(url)
        print(f"  PostgreSQL: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def server_section(n: int) -> None:
    print("\n== through `wp server start` (embedded SQLite) and `wp worker start` processes over HTTP")
    with tempfile.TemporaryDirectory(prefix="wp-bench-") as tmp, served(Path(tmp)) as bench:
        bench.start_workers(1, "one")
        p50, p99 = percentiles(dispatch_latencies(bench))
        print(f"  dispatch latency (expected start -> process started): p50 {p50:.3f} s, p99 {p99:.3f} s "
              f"(target p50 <= 0.5 s)")  # fmt: skip
        p50, p99 = percentiles(dispatch_now_latencies(bench))
        print(f"  dispatch latency of a run due now, idle worker (created -> process started): p50 {p50:.3f} s, "
              f"p99 {p99:.3f} s")  # fmt: skip
        one = Peaks()
        rate, completed = throughput(bench, n, one)
        print(f"  throughput, 1 worker --limit 4: {rate:.2f} runs/s ({completed}/{n} completed; target >= 5; "
              f"modelled system 0.3: {rate / MODELLED_RUNS_PER_S:.0f}x)")  # fmt: skip
        bench.stop_workers()
        bench.start_workers(4, "four")
        four = Peaks()
        rate4, completed4 = throughput(bench, 2 * n, four)
        print(f"  throughput, 4 workers --limit 4: {rate4:.2f} runs/s ({completed4}/{2 * n} completed)")
        child = max(one.child, four.child) / MB
        print(f"  worker RSS peak {one.worker / MB:.1f} MB with 4 running children (target <= 80 MB; modelled "
              f"system {MODELLED_WORKER_MB:.0f} MB: {MODELLED_WORKER_MB / (one.worker / MB):.1f}x smaller)")  # fmt: skip
        print(f"  largest flow-run child RSS {child:.1f} MB (target <= 40 MB per running child)")
        print(
            f"  server RSS peak {max(one.server, four.server) / MB:.1f} MB while serving 1 and then 4 workers"
        )
        print(
            f"  'database is locked' in server and worker logs: {bench.logs_text().count('database is locked')}"
        )


def embedded_section(n: int) -> None:
    print("\n== 4 workers straight on the embedded SQLite file (4 writer processes, no server)")
    with tempfile.TemporaryDirectory(prefix="wp-bench-") as tmp:
        home = Path(tmp)
        store = SqlStore(f"sqlite:///{home / 'wp.db'}")
        prepare(home, store)
        bench = Bench(home, env_for(WP_HOME=str(home)), store)
        try:
            bench.start_workers(4, "embedded")
            rate, completed = throughput(bench, 2 * n, Peaks())
        finally:
            bench.stop_workers()
            store.close()
        locked = bench.logs_text().count("database is locked")
        print(f"  throughput {rate:.2f} runs/s ({completed}/{2 * n} completed); "
              f"'database is locked' logged {locked} times (target 0)")  # fmt: skip


def main() -> None:
    global POLL_INTERVAL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("runs", nargs="?", type=int, default=40, help="runs per throughput section")
    parser.add_argument("--poll-interval", help="the workers' --poll-interval (default: wp's own default)")
    args = parser.parse_args()
    n = args.runs
    POLL_INTERVAL = args.poll_interval
    print(
        f"workers: `wp worker start --limit 4` with --poll-interval {POLL_INTERVAL or 'left at its default'}"
    )
    claim_section()
    server_section(n)
    embedded_section(n)


if __name__ == "__main__":
    main()
