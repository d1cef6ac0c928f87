"""Plan/apply at scale: 1,000 pools (3 queues each) + 1k / 5k / 10k deployments with schedules.

Prints, per store (SQLite; PostgreSQL when WP_TEST_POSTGRES_URL is set) and size: plan from empty, apply from
empty, `wp apply --auto-approve` from empty as a whole process (planning and printing the plan included; its wall
time, CPU time, user + system, which a busy machine disturbs less, and peak RSS), no-op
plan, the same no-op as a whole `wp plan --detailed-exitcode` process after that `wp apply` (start, imports,
output and exit included; the no-op shortcut answers it), the same with `--refresh` (the full path: load, snapshot,
diff), the same no-op through a `wp server` on that database (`WP_API_URL`), one-field-change plan (seconds) and
the peak RSS of the in-process stages (MB). The whole-process columns are what a user times; every command runs
with its default flags unless named. Each size runs in a fresh child process so peak RSS is that size's own.
Targets (issue 8): no-op `wp plan` ≤ 1.0 s, through a server ≤ 1.5 s, `wp apply` from empty ≤ 3.0 s.
The `wp` processes run with bytecode caching on and wp byte-compiled first, as after `pip install .`
(PYTHONDONTWRITEBYTECODE is dropped: with it an editable install compiles wp from source on every command).
`--rounds N` measures every size N times, one line each (report the lowest and highest).

    python bench/plan_scale.py [--sizes 1000,5000,10000] [--pools 1000] [--stores sqlite,postgres] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from compare_prefect import compile_wp

FLOW = "def run(n: int = 0) -> int:\n    return n\n"


def write_project(root: Path, pools: int, deployments: int) -> None:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "job.py").write_text(FLOW)
    lines = ["project: scale", "work_pools:"]
    for p in range(pools):
        lines += [
            f"  - name: pool-{p}",
            "    type: process",
            f"    concurrency_limit: {10 + p % 7}",
            "    queues:",
            "      - {name: critical, priority: 1, concurrency_limit: 1}",
            "      - {name: high, priority: 5, concurrency_limit: 3}",
            "      - {name: low, priority: 10}",
        ]
    lines.append("deployments:")
    for d in range(deployments):
        lines += [
            f"  - name: dep-{d}",
            "    entrypoint: flows/job.py:run",
            f"    parameters: {{n: {d}}}",
            f"    work_pool: {{name: pool-{d % pools}, work_queue_name: high, job_variables: {{env: {{D: '{d}'}}}}}}",
            "    schedules:",
            f"      - {{slug: s, cron: '{d % 60} * * * *', timezone: Europe/Berlin}}",
        ]
    (root / "wp.yaml").write_text("\n".join(lines) + "\n")


def fresh_database(url: str, name: str) -> str:
    if not url.startswith("postgresql"):
        return url
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def measure(url: str, proc_url: str, pools: int, deployments: int) -> dict[str, float]:
    from reconciler.engine.apply import apply_plan
    from reconciler.pipeline import plan_project
    from reconciler.store.sql import SqlStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        write_project(root, pools, deployments)
        wall, cpu, rss = wp_process(["apply", str(root), "--auto-approve"], proc_url)
        out: dict[str, float] = {"wp_apply": wall, "wp_apply_cpu": cpu, "wp_apply_rss_mb": rss}
        noop = ["plan", str(root), "--detailed-exitcode"]
        out["noop_wp_plan"] = wp_seconds(noop, proc_url)
        out["refresh_wp_plan"] = wp_seconds([*noop, "--refresh"], proc_url)
        with served(proc_url) as api_url:
            out["served_wp_plan"] = wp_seconds(noop, proc_url, api_url=api_url)
        store = SqlStore(url)
        env = dict(os.environ)

        def timed(label: str) -> object:
            t0 = time.perf_counter()
            outcome = plan_project(root, store, env=env, now=datetime.now(UTC))
            out[label] = time.perf_counter() - t0
            assert outcome.plan is not None, [d.format() for d in outcome.diagnostics[:5]]
            return outcome.plan

        plan = timed("plan_from_empty")
        t0 = time.perf_counter()
        apply_plan(store, plan, actor="bench")  # type: ignore[arg-type]
        out["apply_from_empty"] = time.perf_counter() - t0
        del plan  # a real `wp plan` process holds one plan, not two
        noop = timed("noop_plan")
        assert not noop.has_changes  # type: ignore[attr-defined]
        del noop
        text = (
            (root / "wp.yaml")
            .read_text()
            .replace("name: dep-7\n", "name: dep-7\n    description: changed\n", 1)
        )
        (root / "wp.yaml").write_text(text)
        one = timed("one_field_plan")
        assert one.summary.change == 1, one.summary  # type: ignore[attr-defined]
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out


@contextlib.contextmanager
def served(url: str) -> Iterator[str]:
    """A `wp server` on the database at `url`, for as long as the block runs; yields its URL."""
    script = Path(sys.executable).parent / "wp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_DATABASE_URL": url}
    server = subprocess.Popen(
        [str(script), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(api_url + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield api_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def wp_seconds(args: list[str], url: str, *, api_url: str | None = None) -> float:
    """Wall time of one `wp` command as its own process, which must exit 0 (for a plan: no changes)."""
    return wp_process(args, url, api_url=api_url)[0]


def wp_process(args: list[str], url: str, *, api_url: str | None = None) -> tuple[float, float, float]:
    """Wall time, CPU time (user + system) and peak RSS (MB) of one `wp` command as its own process, which
    must exit 0."""
    script = Path(sys.executable).parent / "wp"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WP_") and k != "PYTHONDONTWRITEBYTECODE"
    } | {"WP_DATABASE_URL": url}
    if api_url is not None:
        env = {k: v for k, v in env.items() if k != "WP_DATABASE_URL"} | {"WP_API_URL": api_url}
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        child = subprocess.Popen([str(script), *args], env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        assert child.returncode == 0, errors.read().decode()[-2000:]
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs=4, metavar=("URL", "PROC_URL", "POOLS", "DEPLOYMENTS"))
    args = parser.parse_args()
    if args.child:
        url, proc_url, pools, deployments = args.child
        print(json.dumps(measure(url, proc_url, int(pools), int(deployments))))
        return
    pg = os.environ.get("WP_TEST_POSTGRES_URL")
    compile_wp()
    print(
        f"{'store':<9} {'deployments':>11} {'plan(empty)':>12} {'apply(empty)':>13} {'`wp apply`':>11} "
        f"{'its CPU':>8} {'its RSS':>8} "
        f"{'no-op plan':>11} {'`wp plan`':>10} {'--refresh':>10} {'via server':>11} {'1-field plan':>13} "
        f"{'peak RSS':>9}"
    )
    for store in args.stores.split(","):
        if store != "sqlite" and not pg:
            print(f"{store:<9} skipped: set WP_TEST_POSTGRES_URL")
            continue
        for size in [int(s) for s in args.sizes.split(",")]:
            for _ in range(args.rounds):
                print_row(store, size, args.pools, pg)


def print_row(store: str, size: int, pools: int, pg: str | None) -> None:
    """Measure one store and size in a fresh child process and print its line."""
    with tempfile.TemporaryDirectory() as tmp:
        if store == "sqlite" or pg is None:
            url, proc_url = f"sqlite:///{tmp}/wp.db", f"sqlite:///{tmp}/wp-process.db"
        else:
            url = fresh_database(pg, f"wp_bench_{size}")
            proc_url = fresh_database(pg, f"wp_bench_{size}_process")
        proc = subprocess.run(
            [sys.executable, __file__, "--child", url, proc_url, str(pools), str(size)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{store:<9} {size:>11} FAILED\n{proc.stderr[-3000:]}")
            return
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{store:<9} {size:>11} {r['plan_from_empty']:>11.2f}s {r['apply_from_empty']:>12.2f}s "
            f"{r['wp_apply']:>10.2f}s {r['wp_apply_cpu']:>7.2f}s {r['wp_apply_rss_mb']:>6.0f}MB "
            f"{r['noop_plan']:>10.2f}s {r['noop_wp_plan']:>9.2f}s {r['refresh_wp_plan']:>9.2f}s "
            f"{r['served_wp_plan']:>10.2f}s {r['one_field_plan']:>12.2f}s "
            f"{r['peak_rss_mb']:>7.0f}MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
