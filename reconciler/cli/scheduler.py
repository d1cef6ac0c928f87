"""`wp scheduler`: the scheduler alone, for stores used without a `wp server` (e.g. the embedded SQLite)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from reconciler.cli.context import JsonOption, console, now, open_store, print_json


def scheduler(
    interval: float = typer.Option(5.0, "--interval", min=0.1, help="Seconds between ticks."),
    once: bool = typer.Option(False, "--once", help="Run one tick, print what it did, and exit."),
    json_out: bool = JsonOption,
) -> None:
    """Keep every active schedule's next runs created, mark late runs and recover dead workers' runs."""
    from reconciler.runtime.scheduler import Scheduler

    store = open_store()
    runner = Scheduler(store)
    if once:
        report = runner.tick(now())
        if json_out:
            print_json(
                {
                    "created": report.created,
                    "late": report.late,
                    "requeued": report.requeued,
                    "crashed": report.crashed,
                    "skipped": list(report.skipped),
                }
            )
        else:
            console.print(
                f"Created {report.created} runs, marked {report.late} late, handed back {report.requeued} and "
                f"crashed {report.crashed} runs of dead workers."
            )
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"Scheduler started (every {interval:g} s). Ctrl-C to stop.")
    runner.run_forever(stop, interval)
    console.print("Scheduler stopped.")
