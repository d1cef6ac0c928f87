"""`wp sync start|status|suspend|resume|now`: the continuous GitOps sync (SPEC §8) on the command line.

A thin adapter over reconciler.gitops.sync: parse flags, run the loop (one pass with `--once`) until SIGTERM
or Ctrl-C, print one line whenever the status changes; show and control the status records in the store.
Exit codes: 0 synced (or out of sync, suspended), 1 failed or git unreachable, 3 lock held.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli.context import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_STALE,
    JsonOption,
    actor,
    console,
    environ,
    err_console,
    now,
    open_store,
    print_json,
)

if TYPE_CHECKING:
    from reconciler.gitops.sync import PassResult
    from reconciler.store.base import SyncKey, SyncStatus

app = typer.Typer(help="Continuous GitOps sync: watch a branch, apply each new revision, report drift.")

PHASE_STYLE = {"Synced": "green", "OutOfSync": "yellow", "Failed": "red", "Suspended": "blue"}


@app.callback()
def _group() -> None:
    """Continuous GitOps sync: watch a branch, apply each new revision, report drift."""


def status_json(status: SyncStatus) -> dict[str, Any]:
    from reconciler.api.sync_shapes import sync_status_to_shape

    return sync_status_to_shape(status).model_dump(mode="json")


def _print_result(result: PassResult) -> None:
    from rich.markup import escape

    status = result.status
    phase = status.phase.value if status is not None and result.outcome != "unreachable" else "-"
    if result.outcome == "unreachable":
        phase = "Unreachable"
    style = PHASE_STYLE.get(phase, "red")
    stamp = now().strftime("%H:%M:%S")
    revision = (status.fetched_revision or "")[:10] if status is not None else ""
    console.print(
        f"{stamp} [{style}]{phase:<11}[/{style}] {revision:<10} {escape(result.message)}", soft_wrap=True
    )


def _exit_code(result: PassResult) -> int:
    if result.outcome in ("failed", "unreachable", "store-error", "error", "waiting"):
        if result.status is not None and result.status.reason == "LockHeld":
            return EXIT_STALE
        return EXIT_ERROR
    return EXIT_OK


@app.command("start")
def start(
    repo: str = typer.Option(
        ...,
        "--repo",
        help="The repository: a local path, file://, https:// (token in WP_SYNC_GIT_TOKEN), or ssh.",
    ),
    branch: str = typer.Option("main", "--branch", help="The branch to follow."),
    path: str = typer.Option(".", "--path", help="The project directory inside the repository."),
    interval: float = typer.Option(60.0, "--interval", min=0.01, help="Seconds between passes."),
    prune: bool = typer.Option(
        False, "--prune", help="Delete managed objects the revision no longer declares."
    ),
    self_heal: bool = typer.Option(
        False, "--self-heal", help="Revert drift at the next pass (default: report it as OutOfSync)."
    ),
    once: bool = typer.Option(False, "--once", help="Run one pass and exit with its outcome."),
    max_backoff: float = typer.Option(
        600.0, "--max-backoff", min=0.0, help="Cap in seconds of the wait after repeated failures."
    ),
    lock_timeout: float = typer.Option(
        5.0, "--lock-timeout", min=0.0, help="Seconds to wait for the apply lock."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Where wp keeps its clone (default: $WP_HOME/sync)."
    ),
) -> None:
    """Watch BRANCH of REPO and apply each new revision of the project at PATH (Ctrl-C or SIGTERM stops)."""
    from reconciler.gitops.source import default_cache_root
    from reconciler.gitops.sync import SyncLoop, SyncSettings

    env = environ()
    settings = SyncSettings(
        repo=repo,
        branch=branch,
        path=path,
        interval=interval,
        prune=prune,
        self_heal=self_heal,
        max_backoff=max_backoff,
        lock_timeout=lock_timeout,
        actor=f"wp-sync ({actor()})",
        cache_dir=cache_dir or default_cache_root(env),
    )
    store = open_store()
    last: list[tuple[str, str]] = []

    def report(result: PassResult) -> None:
        # one line when the status changed (or git or the store fails anew): an idle loop stays quiet
        seen = (result.outcome, result.message)
        troubled = result.outcome in ("unreachable", "store-error", "error")
        if result.changed or not last or (troubled and last[-1] != seen):
            _print_result(result)
        last[:] = [seen]

    loop = SyncLoop(store, settings, env=env, report=report)
    if once:
        result = loop.run_pass()
        _print_result(result)
        raise typer.Exit(_exit_code(result))

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    err_console.print(f"wp sync: following {settings.key} every {interval:g}s (pid {os.getpid()})")
    loop.run_forever()
    err_console.print("wp sync: stopped.")


def _key(repo: str | None, branch: str, path: str) -> SyncKey | None:
    from reconciler.store.base import SyncKey

    return SyncKey(repo, branch, path) if repo else None


RepoOpt = typer.Option(None, "--repo", help="Only the sync of this repository (default: every sync).")
BranchOpt = typer.Option("main", "--branch", help="With --repo: its branch.")
PathOpt = typer.Option(".", "--path", help="With --repo: its project directory.")


@app.command("status")
def status(json_out: bool = JsonOption) -> None:
    """Show each sync: phase, reason, revisions, last attempt and success, drift, recent attempts."""
    from rich.markup import escape
    from rich.table import Table

    records = open_store().list_sync_status()
    if json_out:
        print_json([status_json(s) for s in records])
        return
    if not records:
        console.print("No sync has run against this store yet. Start one with `wp sync start --repo URL`.")
        return
    for s in records:
        style = PHASE_STYLE.get(s.phase.value, "white")
        table = Table(title=f"{escape(str(s.key))}", title_justify="left", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", f"[{style}]{s.phase.value}[/{style}] ({escape(s.reason)})")
        table.add_row("message", escape(s.message))
        table.add_row("fetched", (s.fetched_revision or "-")[:10])
        table.add_row("attempted", (s.attempted_revision or "-")[:10])
        table.add_row("applied", (s.applied_revision or "-")[:10])
        table.add_row(
            "last attempt", s.last_attempt_at.isoformat(timespec="seconds") if s.last_attempt_at else "-"
        )
        table.add_row(
            "last success", s.last_success_at.isoformat(timespec="seconds") if s.last_success_at else "-"
        )
        if s.last_plan:
            table.add_row(
                "last plan", f"+{s.last_plan['add']} ~{s.last_plan['change']} -{s.last_plan['destroy']}"
            )
        if s.drift:
            table.add_row("drift", escape(", ".join(s.drift)))
        if s.suspended:
            table.add_row("suspended", "yes (`wp sync resume`)")
        for i, a in enumerate(s.attempts):
            table.add_row(
                "attempts" if i == 0 else "",
                f"{a.get('time', '')[:19]} {a.get('revision', '')[:10]} {escape(a.get('result', ''))}",
            )
        console.print(table)
        console.print()


def _control(
    repo: str | None, branch: str, path: str, *, suspend: bool | None, request: bool, what: str
) -> None:
    records = open_store().control_sync(_key(repo, branch, path), suspend=suspend, request=request, now=now())
    for s in records:
        console.print(f"{what}: {s.key}", soft_wrap=True)


@app.command("suspend")
def suspend(repo: str | None = RepoOpt, branch: str = BranchOpt, path: str = PathOpt) -> None:
    """Stop applying (fetching and reporting go on) until `wp sync resume`."""
    _control(repo, branch, path, suspend=True, request=True, what="suspended")


@app.command("resume")
def resume(repo: str | None = RepoOpt, branch: str = BranchOpt, path: str = PathOpt) -> None:
    """Apply again from the next pass (which starts at once)."""
    _control(repo, branch, path, suspend=False, request=True, what="resumed")


@app.command("now")
def sync_now(repo: str | None = RepoOpt, branch: str = BranchOpt, path: str = PathOpt) -> None:
    """Ask for an immediate pass that ignores the backoff and retries a failed revision."""
    _control(repo, branch, path, suspend=None, request=True, what="pass requested")
