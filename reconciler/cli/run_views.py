"""How the runtime commands show runs: the `--json` view of a run, its table row, its state history, relative
times, and finding a run by id, id prefix or name.

Shared by `wp flow-run …`, `wp deployment run` and `wp worker ls`. Must never change a run: it only reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from reconciler.cli.context import fail, now

if TYPE_CHECKING:
    from reconciler.model import FlowRun, RunStateChange
    from reconciler.store.base import Store

LATE_AFTER = timedelta(seconds=15)


def run_view(run: FlowRun, patterns: tuple[str, ...], at: datetime | None = None) -> dict[str, Any]:
    from reconciler.model import mask_secrets

    data = run.model_dump(mode="json")
    data["parameters"] = mask_secrets(data["parameters"], patterns)
    data["job_variables"] = mask_secrets(data["job_variables"], patterns)
    if at is not None:
        data["late"] = is_late(run, at)
    return data


def is_late(run: FlowRun, at: datetime) -> bool:
    return run.state == "LATE" or (run.state == "SCHEDULED" and run.expected_start_time + LATE_AFTER < at)


def state_markup(state: str) -> str:
    colour = {"COMPLETED": "green", "RUNNING": "blue", "FAILED": "red", "CRASHED": "red", "LATE": "yellow"}
    return f"[{colour.get(state, 'white')}]{state}[/]"


def runs_table(title: str, rows: list[dict[str, Any]], *, with_late: bool = False) -> Table:
    """Short ids (enough to name a run: `wp flow-run inspect` takes a prefix) and times relative to now."""
    at = now()
    table = Table(title=title, title_justify="left")
    for col in ("ID", "Name", "Deployment", "Pool / queue", "State", "Expected start"):
        table.add_column(col, no_wrap=col in ("ID", "Name", "State", "Expected start"))
    for r in rows:
        late = with_late and r.get("late") and r["state"] != "LATE"  # a LATE state says so itself
        state = state_markup(r["state"]) + (" [bold yellow](late)[/]" if late else "")
        table.add_row(
            r["id"][:8],
            r["name"],
            r["deployment"],
            f"{r['work_pool']} / {r['work_queue']}",
            state,
            relative_time(datetime.fromisoformat(r["expected_start_time"]), at),
        )
    return table


def relative_time(when: datetime, at: datetime) -> str:
    """`in 5 minutes`, `2 hours ago`: the largest whole unit."""
    seconds = (when - at).total_seconds()
    size = abs(seconds)
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if size >= length or unit == "second":
            n = int(size // length)
            text = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {text}" if seconds > 0 else f"{text} ago" if n else "now"
    return "now"


def resolve_run(store: Store, ref: str) -> FlowRun:
    """A run named by its id, its name or a unique prefix of its id; an ambiguous one lists the candidates."""
    found = store.list_flow_runs(match=ref, limit=11, newest_first=True)
    exact = [r for r in found if ref in (r.id, r.name)]
    if len(exact) == 1:
        return exact[0]
    if len(found) == 1:
        return found[0]
    if not found:
        fail(
            f"no flow run is named {ref!r} or has an id starting with it",
            hint="`wp flow-run ls` lists the runs",
        )
    listed = "\n".join(f"    {r.id[:8]}  {r.name}  {r.deployment}  {r.state}" for r in found[:10])
    more = " (and more)" if len(found) > 10 else ""
    fail(
        f"{ref!r} names more than one flow run{more}:\n{listed}",
        hint="give more of the id, or the run's name",
    )


def history_view(changes: list[RunStateChange]) -> list[dict[str, Any]]:
    """A run's state history for `--json`: from, to, timestamp, message, actor; oldest first."""
    return [c.model_dump(mode="json", exclude={"run_id"}) for c in changes]


def history_table(run: FlowRun, changes: list[RunStateChange]) -> Table:
    """The run's state changes as a table, its creation first."""
    at = now()
    table = Table(title="State history", title_justify="left")
    for col in ("When", "State", "By", "Message"):
        table.add_column(col, no_wrap=col in ("When", "State"))
    if run.created is not None:
        table.add_row(relative_time(run.created, at), "created", "", "")
    for c in changes:
        table.add_row(
            relative_time(c.timestamp, at),
            f"{c.from_state or '-'} → {state_markup(c.to_state)}",
            escape(c.actor or ""),
            escape(c.message or ""),
        )
    return table
