"""Web UI figures: first paint of the pools page with 1,000 pools and 100 workers, of the runs page with 100,000
runs in the store, and the server's memory while a page stays open and updating.

    python bench/ui_pages.py [SECONDS]        # SECONDS the page stays open for the memory figure (default 120)

Seeds an embedded SQLite store in a temp dir, starts a real `wp server start` on it, and opens the pages in
Debian's headless chromium (as tests/ui does). First paint is the browser's own `first-contentful-paint`; the
server-side time is the median of 5 fetches of the page's HTML. Prints figures; asserts nothing.
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

import httpx
import procfs
from loopback import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
from ui_browser import start_browser

from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import FlowRun, WorkPool, attributes, key_of
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

POOLS = 1_000
WORKERS = 100
RUNS = 100_000


def seed(url: str) -> None:
    store = SqlStore(url)
    now = datetime.now(UTC)
    pools = [WorkPool(name=f"pool-{i:04d}", concurrency_limit=10) for i in range(POOLS)]
    changes = tuple(Change(key_of(p), Action.CREATE, None, attributes(p)) for p in pools)
    store.apply(
        Plan(project="bench", changes=changes), ApplyRecord(project="bench", actor="bench", summary={})
    )
    for i in range(WORKERS):
        store.heartbeat_worker(f"pool-{i:04d}", f"worker-{i}", interval=3600, now=now)
    runs = []
    for i in range(RUNS):
        run_id = str(uuid.uuid4())
        runs.append(
            FlowRun(
                id=run_id,
                name=f"run-{i}",
                flow="f",
                deployment=f"f/d{i % 50}",
                work_pool=f"pool-{i % 20:04d}",
                work_queue="default",
                # as a live store holds them: a few running (limits bound them), the rest finished
                state="RUNNING" if i % 1000 == 0 else ("FAILED" if i % 7 == 0 else "COMPLETED"),
                expected_start_time=now - timedelta(seconds=30 * i),
                idempotency_key=f"bench-{i}",
            )
        )
    store.insert_scheduled_runs(runs)
    store.close()


def server_ms(url: str) -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        httpx.get(url, timeout=60).raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def first_paint(driver: object, url: str) -> float:
    driver.get(url)  # type: ignore[attr-defined]
    for _ in range(100):
        fcp = driver.execute_script(  # type: ignore[attr-defined]
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null"
        )
        if fcp is not None:
            return float(fcp)
        time.sleep(0.05)
    raise RuntimeError(f"no first paint reported for {url}")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        seed(f"sqlite:///{tmp}/wp.db")
        print(f"seeded {POOLS} pools, {WORKERS} workers, {RUNS} runs in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_HOME": tmp}
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "wp"),
                "server",
                "start",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"server HTML, median of 5: pools page {server_ms(base + '/ui/pools'):.0f} ms, "
                  f"runs page {server_ms(base + '/ui/runs'):.0f} ms, "
                  f"runs of one pool {server_ms(base + '/ui/runs?pool=pool-0003'):.0f} ms")  # fmt: skip
            browser = start_browser()
            driver = next(browser)
            try:
                first_paint(driver, base + "/ui/pools")  # warm the browser's caches, as a user's would be
                print(f"first contentful paint: pools page {first_paint(driver, base + '/ui/pools'):.0f} ms "
                      f"({POOLS} pools, {WORKERS} workers), "
                      f"runs page {first_paint(driver, base + '/ui/runs'):.0f} ms ({RUNS} runs)")  # fmt: skip
                driver.get(base + "/ui/pools/pool-0001")
                start_rss = procfs.rss(server.pid) / 2**20
                time.sleep(seconds)
                end_rss = procfs.rss(server.pid) / 2**20
                print(f"server RSS with a pool page open and updating every 2 s: {start_rss:.0f} MB at start, "
                      f"{end_rss:.0f} MB after {seconds:.0f} s")  # fmt: skip
            finally:
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
