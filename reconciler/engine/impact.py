"""Impact notes: what a planned change does beyond the object itself (SPEC §3, "Impact notes").

Owns three kinds of Note: `schedule_runs` (runs a schedule change removes and adds in the next hours),
`rendered_job` / `invalid_job` (deployments whose rendered job configuration changes, or whose job variables
stop validating, when a pool's base job template changes) and `runs_in_flight` (runs left in a pool or queue
being deleted). Messages are short sentences for the plan output; `data` carries the figures for JSON.

Must never do I/O or read the clock: `now` is a parameter. Whether a change happens is diff's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from reconciler.engine.plan import Note
from reconciler.engine.template import render_job_configuration
from reconciler.engine.template_variables import validate_job_variables
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate, Deployment, Schedule, mask_secrets
from reconciler.schedules import next_times
from reconciler.states import RunState

FIRST_FEW = 3  # fire times / paths quoted in a message
_COUNT_LIMIT = 100_000  # an every-second schedule fires 86 400 times a day; counts stop here


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fires(schedule: Schedule | None, now: datetime, hours: int) -> set[datetime]:
    if schedule is None or not schedule.active:
        return set()
    try:
        return set(next_times(schedule, now, now + timedelta(hours=hours), limit=_COUNT_LIMIT))
    except ValidationError:
        return set()  # an invalid schedule is reported by validation, not here


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def schedule_notes(
    before: Schedule | None, after: Schedule | None, now: datetime, hours: int = 24
) -> list[Note]:
    """Runs that replacing `before` with `after` removes and adds in the next `hours` (None = no schedule)."""
    if before == after:
        return []
    old, new = _fires(before, now, hours), _fires(after, now, hours)
    removed, added = sorted(old - new), sorted(new - old)
    if not removed and not added:
        return []
    parts = []
    if removed:
        parts.append(
            f"removes {_plural(len(removed), 'run')} (first: {', '.join(map(_stamp, removed[:FIRST_FEW]))})"
        )
    if added:
        parts.append(
            f"adds {_plural(len(added), 'run')} (first: {', '.join(map(_stamp, added[:FIRST_FEW]))})"
        )
    data = {
        "hours": hours,
        "removed": len(removed),
        "added": len(added),
        "first_removed": [t.isoformat() for t in removed[:FIRST_FEW]],
        "first_added": [t.isoformat() for t in added[:FIRST_FEW]],
    }
    message = f"In the next {hours} h this {' and '.join(parts)}."
    return [Note("schedule_runs", message, data)]


def _changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two rendered configurations."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += (
                [sub] if (key in before) != (key in after) else _changed_paths(before[key], after[key], sub)
            )
        return out
    return [] if before == after else [path or "(whole)"]


def _render(t: BaseJobTemplate, d: Deployment) -> dict[str, Any] | str:
    """The deployment's rendered job, or the reason it cannot be rendered."""
    try:
        return render_job_configuration(t, d.job_variables)
    except ValidationError as exc:
        return exc.message


def template_notes(
    pool: str, before: BaseJobTemplate, after: BaseJobTemplate, deployments: Sequence[Deployment]
) -> list[Note]:
    """Deployments of `pool` whose rendered job configuration changes, and those the new template breaks."""
    changed: dict[str, list[str]] = {}
    invalid: list[Note] = []
    for d in sorted((d for d in deployments if d.work_pool == pool), key=lambda d: (d.flow, d.name)):
        name = f"{d.flow}/{d.name}"
        problems = [str(p) for p in validate_job_variables(after, d.job_variables)]
        new = _render(after, d)
        if isinstance(new, str):
            problems.append(new)
        if problems and not validate_job_variables(before, d.job_variables):
            message = f"Deployment {name} becomes invalid: {problems[0]}"
            invalid.append(Note("invalid_job", message, {"deployment": name, "problems": problems}))
            continue
        old = _render(before, d)
        if isinstance(new, dict) and isinstance(old, dict) and old != new:
            changed[name] = _changed_paths(mask_secrets(old), mask_secrets(new))
    notes: list[Note] = []
    if changed:
        names = ", ".join(changed)
        message = (
            f"The rendered job changes for {_plural(len(changed), 'deployment')} of pool {pool}: {names}."
        )
        notes.append(Note("rendered_job", message, {"pool": pool, "deployments": changed}))
    return notes + invalid


def runs_in_flight_note(address: str, counts: Mapping[str, int]) -> Note | None:
    """A warning that deleting `address` leaves runs behind; `counts` is runs by state (final states skip)."""
    final = {s.value for s in RunState if s.is_final}
    live = {state: n for state, n in sorted(counts.items()) if n > 0 and state not in final}
    if not live:
        return None
    total = sum(live.values())
    detail = ", ".join(f"{n} {state}" for state, n in live.items())
    message = f"{address} has {_plural(total, 'run')} in flight ({detail}); they will no longer be picked up."
    return Note("runs_in_flight", message, {"address": address, "total": total, "by_state": live})
