"""Continuous sync figures (issue 13). Prints, no assertions.

python bench/sync.py scale [--pools 1000] [--deployments 10000]
    a git repository holding the large project (bench/plan_scale.py's), a fresh SQLite store: the first
    pass (apply from empty), then a pass with nothing changed: seconds, and the SQL writes it made
python bench/sync.py idle [--seconds 600] [--interval 60]
    `wp sync start` as a process on a small synced project: CPU seconds and RSS after SECONDS
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import git

sys.path.insert(0, str(Path(__file__).parent))
from plan_scale import write_project

from reconciler.gitops.sync import SyncLoop, SyncSettings
from reconciler.pipeline import plan_project
from reconciler.store.sql import SqlStore


def _repo(root: Path, pools: int, deployments: int) -> Path:
    work = root / "repo"
    write_project(work, pools, deployments)
    repo = git.Repo.init(work, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "bench")
        config.set_value("user", "email", "bench@example.org")
    repo.git.add("-A")
    repo.index.commit("the project")
    repo.close()
    return work


def _count_writes(store: SqlStore) -> list[str]:
    from sqlalchemy import event

    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement.split("\n", 1)[0][:80])

    event.listen(store.engine, "before_cursor_execute", seen)
    return writes


def scale(pools: int, deployments: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wp-bench-sync-") as tmp:
        root = Path(tmp)
        repo = _repo(root, pools, deployments)
        store = SqlStore(f"sqlite:///{root / 'wp.db'}")
        loop = SyncLoop(store, SyncSettings(repo=str(repo), cache_dir=root / "cache"), env=dict(os.environ))
        started = time.perf_counter()
        first = loop.run_pass()
        print(
            f"first pass (clone + apply from empty): {time.perf_counter() - started:.2f} s -> {first.outcome}"
        )
        writes = _count_writes(store)
        for i in range(3):
            # the plan alone, at the same moment, so a loaded machine shows what the loop adds to it
            started = time.perf_counter()
            plan_project(repo, store, env=dict(os.environ), now=datetime.now(UTC))
            planned = time.perf_counter() - started
            started = time.perf_counter()
            result = loop.run_pass()
            elapsed = time.perf_counter() - started
            print(
                f"no-op pass {i + 1}: {elapsed:.2f} s (the plan alone: {planned:.2f} s) -> {result.outcome}, "
                f"{len(writes)} SQL writes"
            )
        store.close()


def idle(seconds: float, interval: float) -> None:
    import procfs

    with tempfile.TemporaryDirectory(prefix="wp-bench-idle-") as tmp:
        root = Path(tmp)
        repo = _repo(root, 2, 4)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {
            "WP_HOME": str(root / "home")
        }
        wp = str(Path(sys.executable).parent / "wp")
        cmd = [wp, "sync", "start", "--repo", str(repo), "--interval", str(interval)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(10)  # the first pass (clone, apply) is not idle
        cpu0 = procfs.cpu_seconds(proc.pid)
        rss_max = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rss_max = max(rss_max, procfs.rss(proc.pid))
            time.sleep(5)
        cpu = procfs.cpu_seconds(proc.pid) - cpu0
        proc.terminate()
        proc.wait(30)
        print(
            f"idle loop over {seconds:.0f} s (interval {interval:g} s): CPU {cpu:.2f} s "
            f"({100 * cpu / seconds:.2f} % of one core), RSS max {rss_max / 2**20:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("scale")
    s.add_argument("--pools", type=int, default=1000)
    s.add_argument("--deployments", type=int, default=10000)
    i = sub.add_parser("idle")
    i.add_argument("--seconds", type=float, default=600)
    i.add_argument("--interval", type=float, default=60)
    args = parser.parse_args()
    if args.mode == "scale":
        scale(args.pools, args.deployments)
    else:
        idle(args.seconds, args.interval)


if __name__ == "__main__":
    main()
