"""Is each schedule's rule right? Its timezone, its cron expression, and whether its rule can ever be evaluated.

Owns the checks of one deployment's schedule definitions and the wording of their diagnostics (how to fix a
cron field, the nearest timezone name); `config.validate` runs them with the config's other rules. Schedules
repeat a handful of timezones and expressions thousands of times, so each answer is memoized by its text.

Must never do I/O, read the environment or the clock, or change a value.
"""

from __future__ import annotations

import difflib
import functools
import zoneinfo

from reconciler.config.schema import DeploymentDoc
from reconciler.config.sources import Path, Positions
from reconciler.diagnostics import Diagnostic


def schedule_rule_problems(positions: Positions, doc: DeploymentDoc, at: Path) -> list[Diagnostic]:
    """The diagnostics of the schedules of the deployment `doc` written at `at`."""
    out: list[Diagnostic] = []
    for k, s in enumerate(doc.schedules):
        if s.timezone is not None and not _known_timezone(s.timezone):
            close = difflib.get_close_matches(s.timezone, _timezones(), n=1, cutoff=0.6)
            out.append(
                positions.error(
                    f"unknown timezone '{s.timezone}'",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + "use an IANA name such as UTC or Europe/Berlin",
                    (*at, "schedules", k, "timezone"),
                )
            )
        if s.cron is not None and not _valid_cron(s.cron):
            out.append(
                positions.error(
                    f"invalid cron expression '{s.cron}'",
                    _cron_fix(s.cron),
                    (*at, "schedules", k, "cron"),
                )
            )
            continue
        if (s.cron is None and s.rrule is None) or (
            s.timezone is not None and not _known_timezone(s.timezone)
        ):
            continue
        problem = _rule_problem(s.cron, s.rrule, s.timezone, s.day_or)
        if problem is not None:
            summary, _, fix = problem.partition("; ")
            field = "rrule" if s.rrule is not None else "cron"
            out.append(positions.error(summary, fix, (*at, "schedules", k, field)))
    return out


@functools.lru_cache(maxsize=4096)
def _rule_problem(cron: str | None, rrule: str | None, timezone: str | None, day_or: bool) -> str | None:
    """Whether a rule the scheduler will evaluate can be: an rrule that parses, a cron expression that ever
    matches (the scheduler would find nothing to run)."""
    from reconciler.model import Schedule
    from reconciler.schedules import schedule_problem

    try:
        schedule = Schedule(slug="check", cron=cron, rrule=rrule, timezone=timezone, day_or=day_or)
    except ValueError:  # cron and rrule both set: normalization reports that
        return None
    return schedule_problem(schedule)


# Schedules repeat a handful of timezones and cron expressions thousands of times; both answers depend only on
# the text (and the installed tz database), so they are memoized.
@functools.lru_cache(maxsize=4096)
def _known_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=1)
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_NAMES = frozenset(
    [
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
        "sun",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
    ]
)
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")


def _cron_fix(expression: str) -> str:
    """How to fix an invalid cron expression: the field that is out of range or unreadable, else its shape."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        return f"write five fields: minute hour day month weekday (got {len(fields)})"
    for position, (text, (name, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and not step.isdigit():
                return f"{name} (the {_ORDINALS[position]} field) has the step '{step}'; write a number after '/'"
            for bound in base.split("-") if base not in ("*", "?") else ():
                if bound.lower() in _CRON_NAMES:
                    continue
                if not bound.isdigit():
                    return f"{name} (the {_ORDINALS[position]} field) '{bound}' is not a number; write {low}-{high}"
                if not low <= int(bound) <= high:
                    return f"{name} (the {_ORDINALS[position]} field) is {bound}, out of range {low}-{high}"
    return "write five fields: minute hour day month weekday, each a number, range, list or */step"


@functools.lru_cache(maxsize=4096)
def _valid_cron(expression: str) -> bool:
    from croniter import croniter

    return bool(croniter.is_valid(expression))
