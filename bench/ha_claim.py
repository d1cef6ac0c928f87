"""Beyond one machine: 8 workers claiming 10,000 due runs from one PostgreSQL store, directly and through two
`wp server` processes side by side. Prints claim latency p50 / p99, claims per second and runs per second, and
the number of runs claimed twice (must be 0). Asserts nothing.

    python bench/ha_claim.py postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Each worker is a thread with its own store (a SqlStore, or an HttpStore on server 1 or 2 alternately) that claims
up to 10 runs per call until none are left; the pool has no limit, so the figures are the claim path's own.
The database named in the URL is replaced by a fresh one per mode.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reconciler.model import FlowRun, WorkPool
from reconciler.store.base import Store
from reconciler.store.open import open_store
from reconciler.store.sql import SqlStore

RUNS = 10_000
WORKERS = 8
BATCH = 10


def fresh_database(admin_url: str) -> str:
    name = f"wp_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(SqlStore(admin_url).url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(SqlStore(admin_url).url).set(database=name).render_as_string(hide_password=False)


def seed(url: str) -> None:
    store = SqlStore(url)
    store.create_work_pool(WorkPool(name="bench", type="process"))
    now = datetime.now(UTC) - timedelta(seconds=5)
    runs = []
    for i in range(RUNS):
        run_id = str(uuid.uuid4())
        runs.append(
            FlowRun(
                id=run_id,
                name=f"r{i}",
                flow="f",
                deployment="f/d",
                work_pool="bench",
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=now + timedelta(microseconds=i),
            )
        )
    store.insert_scheduled_runs(runs)
    store.close()


def drain(make_store: Callable[[int], Store]) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        store = make_store(n)
        name = f"w{n}"
        store.heartbeat_worker("bench", name, interval=30, now=datetime.now(UTC))
        while True:
            now = datetime.now(UTC)
            started = time.perf_counter()
            got = store.claim_runs("bench", name, limit=BATCH, scheduled_before=now, now=now)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                claimed.extend(r.id for r in got)
            if not got:
                return

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, claimed, time.perf_counter() - began


def start_servers(url: str) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_DATABASE_URL": url}
    procs, urls = [], []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        wp = Path(sys.executable).parent / "wp"
        procs.append(
            subprocess.Popen(
                [str(wp), "server", "start", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    for u in urls:
        for _ in range(300):
            try:
                if httpx.get(u + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    return procs, urls


def report(mode: str, latencies: list[float], claimed: list[str], seconds: float) -> None:
    calls = sorted(latencies)
    p50 = statistics.median(calls) * 1000
    p99 = calls[int(len(calls) * 0.99) - 1] * 1000
    twice = sum(1 for n in Counter(claimed).values() if n > 1)
    print(
        f"{mode:<28} runs {len(set(claimed)):>6}  claims {len(calls):>5}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"{len(calls) / seconds:6.0f} claims/s  {len(claimed) / seconds:6.0f} runs/s  claimed twice: {twice}"
    )


def main() -> None:
    admin = sys.argv[1] if len(sys.argv) > 1 else os.environ["WP_TEST_POSTGRES_URL"]
    print(f"{WORKERS} workers, {RUNS:,} due runs, up to {BATCH} runs per claim, PostgreSQL")
    url = fresh_database(admin)
    seed(url)
    report("direct (8 SqlStores)", *drain(lambda n: SqlStore(url)))
    url = fresh_database(admin)
    seed(url)
    procs, urls = start_servers(url)
    try:
        report("through 2 wp servers (HTTP)", *drain(lambda n: open_store({"WP_API_URL": urls[n % 2]})))
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
