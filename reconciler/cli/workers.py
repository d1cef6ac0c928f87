"""`wp worker start` and `wp worker ls`.

Owns the worker commands' flags, mapping SIGTERM/SIGINT to the worker's graceful stop, and the workers listing
(status, host, pid, runs in hand; OFFLINE ones only with `--all`). The worker itself is `runtime/worker.py`.
"""

from __future__ import annotations

import signal
from datetime import datetime
from types import FrameType
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from reconciler.cli.context import JsonOption, console, fail, now, open_store, print_json
from reconciler.cli.run_views import relative_time

worker_app = typer.Typer(help="Start workers and list them.", no_args_is_help=True)


@worker_app.command("start")
def worker_start(
    pool: str = typer.Option(..., "--pool", "-p", help="The work pool to take runs from."),
    work_queue: list[str] = typer.Option([], "--work-queue", "-q", help="Only these queues (repeatable)."),
    limit: int | None = typer.Option(None, "--limit", "-l", min=1, help="At most N runs at once."),
    name: str | None = typer.Option(None, "--name", "-n", help="The worker's name (default: random)."),
    type_: str | None = typer.Option(
        None, "--type", "-t", help="Refuse to start unless the pool has this type."
    ),
    prefetch_seconds: float = typer.Option(
        10.0, "--prefetch-seconds", min=0, help="Claim runs due this soon."
    ),
    run_once: bool = typer.Option(False, "--run-once", help="Claim once, run what was claimed, exit."),
    heartbeat_interval: float = typer.Option(
        30.0, "--heartbeat-interval", min=0.1, help="Seconds between heartbeats."
    ),
    poll_interval: float = typer.Option(0.5, "--poll-interval", min=0.05, help="Seconds between claims."),
) -> None:
    """Start a worker: heartbeat, claim due runs, start them, report states. SIGTERM stops it gracefully."""
    from reconciler.model import check_name
    from reconciler.runtime.worker import Worker, WorkerOptions

    if name is not None:
        try:
            check_name(name, "worker name")
        except ValueError as exc:
            fail(str(exc))
    options = WorkerOptions(
        pool=pool,
        name=name,
        queues=tuple(work_queue),
        limit=limit,
        type=type_,
        prefetch_seconds=prefetch_seconds,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        run_once=run_once,
    )
    worker = Worker(open_store(), options)
    worker.setup()

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


@worker_app.command("ls")
def worker_ls(
    pool: str | None = typer.Option(
        None, "--pool", "-p", help="Only this pool's workers (default: every pool)."
    ),
    all_: bool = typer.Option(False, "--all", "-a", help="Also list OFFLINE workers."),
    json_out: bool = JsonOption,
) -> None:
    """List workers with their status, host, pid and the runs each has in hand; OFFLINE ones only with --all."""
    store = open_store()
    if pool is not None:
        store.get_work_pool(pool)  # a clear NotFoundError for a pool that does not exist
    at = now()
    pools = [pool] if pool is not None else [p.name for p in store.list_work_pools()]
    rows: list[dict[str, Any]] = []
    for name in pools:
        rows += [w.model_dump(mode="json") for w in store.list_workers(name, at)]
    hidden = 0 if all_ else sum(1 for r in rows if r["status"] != "ONLINE")
    if not all_:
        rows = [r for r in rows if r["status"] == "ONLINE"]
    if json_out:
        print_json(rows)
        return
    where = f"work pool {escape(pool)}" if pool is not None else "any work pool"
    if not rows:
        console.print(f"No {'' if all_ else 'online '}workers on {where}.")
    else:
        table = Table(title="Workers", title_justify="left")
        for col in ("Pool", "Name", "Status", "Host", "PID", "Runs in hand", "Last heartbeat"):
            table.add_column(col)
        for r in rows:
            colour = "green" if r["status"] == "ONLINE" else "red"
            table.add_row(
                escape(str(r["work_pool"])),
                escape(str(r["name"])),
                f"[{colour}]{r['status']}[/]",
                escape(r["host"] or "-"),
                str(r["pid"] or "-"),
                str(r["runs_in_hand"]),
                relative_time(datetime.fromisoformat(str(r["last_heartbeat"])), at),
            )
        console.print(table)
    if hidden:
        console.print(f"{hidden} offline worker{'s' if hidden != 1 else ''} hidden; --all shows them.")
