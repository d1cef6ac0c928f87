"""The schedule calculator: when a cron, interval or rrule schedule fires, in its timezone, DST-correct.

Owns `next_times` (every fire time in a window, as aware UTC datetimes) and `check_schedule` (a
user-facing error for an invalid cron expression, rrule or timezone). Wall-clock rules (cron, rrule) are
iterated in naive local time and then placed on the timeline: a time that does not exist (spring forward)
runs once, shifted forward by the gap; a time that occurs twice (fall back) runs once, at its first
occurrence. Rules that fire every hour (cron hour field `*`, rrule HOURLY or finer) instead follow the real
clock: they fire in both repeated hours and not in the skipped one. Intervals are absolute durations from
their anchor.

Must never do I/O, read the clock or the environment: `start` and `end` are parameters. Which runs are due and
written is the scheduler's business, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import rrulebase, rrulestr

from reconciler.errors import ValidationError
from reconciler.model import Schedule

DEFAULT_ANCHOR = datetime(2020, 1, 1)  # wall time in the schedule's timezone
_MARGIN = timedelta(hours=3)  # wider than any DST shift: wall-clock iteration starts and stops this far out
_SLACK = 4  # extra candidates collected past `limit`, since DST shifts can reorder a few
_DTSTART = re.compile(r"^DTSTART(?:;TZID=([^:;\r\n]+))?:(\d{8}(?:T\d{4,6})?)(Z?)\s*$", re.I | re.M)
_STEP_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400}
_CLOCK_FREQS = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
_CRON_HELP = "expected 5 fields 'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown timezone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'",
            path=("timezone",),
        ) from None


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _instants(wall: datetime, tz: ZoneInfo, *, follows_clock: bool) -> list[datetime]:
    """The UTC instants a wall-clock fire time stands for (see the module docstring for the DST rules)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if not follows_clock:
        return [first]
    exists = _wall(first, tz) == wall
    if not exists:
        return []
    return [first] if first == second else [first, second]


def _from_walls(
    walls: Iterator[datetime],
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    limit: int,
    *,
    follows_clock: bool,
) -> list[datetime]:
    stop = _wall(end, tz) + _MARGIN
    found: list[datetime] = []
    for wall in walls:
        if wall > stop or len(found) >= limit + _SLACK:
            break
        found.extend(t for t in _instants(wall, tz, follows_clock=follows_clock) if start <= t < end)
    return found


# ---------------------------------------------------------------------------------------------- cron


def _cron(expr: str, begin: datetime, day_or: bool) -> croniter:
    try:
        return croniter(expr, begin, day_or=day_or)
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        raise ValidationError(
            f"invalid cron expression {expr!r}: {exc}; {_CRON_HELP}", path=("cron",)
        ) from None


def _cron_walls(it: croniter) -> Iterator[datetime]:
    while True:
        try:
            yield it.get_next(datetime)
        except CroniterBadDateError:  # the expression matches no further date (e.g. 30 February)
            return


def _cron_times(s: Schedule, tz: ZoneInfo, start: datetime, end: datetime, limit: int) -> list[datetime]:
    expr = (s.cron or "").strip()
    fields = expr.split()
    hourly = expr.lower() == "@hourly" or (len(fields) >= 5 and fields[1] == "*")
    it = _cron(expr, _wall(start, tz) - _MARGIN, s.day_or)
    return _from_walls(_cron_walls(it), tz, start, end, limit, follows_clock=hourly)


# ---------------------------------------------------------------------------------------------- interval


def _interval_times(s: Schedule, tz: ZoneInfo, start: datetime, end: datetime, limit: int) -> list[datetime]:
    anchor = s.anchor_date or DEFAULT_ANCHOR
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=tz)
    anchor = anchor.astimezone(UTC)  # aware arithmetic in a zone is wall-clock; intervals are absolute
    step_us = max(1, round((s.interval or 0) * 1_000_000))
    offset_us = (start - anchor) // timedelta(microseconds=1)
    k = -(-offset_us // step_us)  # the first step at or after `start`
    out: list[datetime] = []
    while len(out) < limit:
        t = (anchor + timedelta(microseconds=k * step_us)).astimezone(UTC)
        if t >= end:
            break
        out.append(t)
        k += 1
    return out


# ---------------------------------------------------------------------------------------------- rrule


def _parse_dtstart(text: str, tz: ZoneInfo) -> datetime | None:
    """DTSTART as a naive wall time in `tz` (converted when it names another zone or UTC)."""
    m = _DTSTART.search(text)
    if not m:
        return None
    tzid, stamp, utc = m.groups()
    fmt = "%Y%m%d" if "T" not in stamp.upper() else ("%Y%m%dT%H%M%S" if len(stamp) == 15 else "%Y%m%dT%H%M")
    naive = datetime.strptime(stamp.upper(), fmt)
    if utc:
        return _wall(naive.replace(tzinfo=UTC), tz)
    if tzid:
        return _wall(naive.replace(tzinfo=_zone(tzid.strip())), tz)
    return naive


def _rrule_zone(s: Schedule) -> ZoneInfo:
    """The schedule's timezone, else DTSTART's TZID, else UTC."""
    if s.timezone:
        return _zone(s.timezone)
    m = _DTSTART.search(s.rrule or "")
    return _zone(m.group(1).strip() if m and m.group(1) else None)


def _fast_forward(text: str, dtstart: datetime, begin: datetime) -> datetime:
    """Move DTSTART forward by whole periods towards `begin`, so that a fine rule (every second, DTSTART
    years ago) is not iterated from its start. Only for one RRULE without COUNT: the series stays the same."""
    upper = text.upper()
    freq = re.search(r"FREQ=(\w+)", upper)
    if upper.count("FREQ=") != 1 or "COUNT=" in upper or not freq or freq.group(1) not in _STEP_SECONDS:
        return dtstart
    interval = re.search(r"INTERVAL=(\d+)", upper)
    period = timedelta(seconds=_STEP_SECONDS[freq.group(1)] * int(interval.group(1) if interval else 1))
    if dtstart >= begin or period <= timedelta(0):
        return dtstart
    return dtstart + ((begin - dtstart) // period) * period


def _rrule(s: Schedule, tz: ZoneInfo, begin: datetime) -> rrulebase:
    text = (s.rrule or "").strip()
    try:
        dtstart = _parse_dtstart(text, tz) or DEFAULT_ANCHOR
        body = _DTSTART.sub("", text).strip()
        dtstart = _fast_forward(body, dtstart, begin)
        rule: rrulebase = rrulestr(body, dtstart=dtstart, ignoretz=True, forceset=True, cache=False)
        return rule
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValidationError(
            f"invalid rrule {text!r}: {exc}; expected RFC 5545 text such as 'FREQ=DAILY;BYHOUR=9;BYMINUTE=0'",
            path=("rrule",),
        ) from None


def _rrule_times(s: Schedule, start: datetime, end: datetime, limit: int) -> list[datetime]:
    tz = _rrule_zone(s)
    begin = _wall(start, tz) - _MARGIN
    freq = re.search(r"FREQ=(\w+)", (s.rrule or "").upper())
    follows_clock = bool(freq and freq.group(1) in _CLOCK_FREQS)
    walls = _rrule(s, tz, begin).xafter(begin, inc=True)
    return _from_walls(walls, tz, start, end, limit, follows_clock=follows_clock)


# ---------------------------------------------------------------------------------------------- public


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def next_times(schedule: Schedule, start: datetime, end: datetime, *, limit: int = 1000) -> list[datetime]:
    """Fire times of `schedule` in [start, end), sorted, as aware UTC datetimes; at most `limit` of them.

    `active` is not looked at (callers decide whether an inactive schedule runs). Raises ValidationError for
    an invalid cron, rrule or timezone (check_schedule says the same without raising).
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    if limit <= 0 or end <= start:
        return []
    if schedule.rrule is not None:
        times = _rrule_times(schedule, start, end, limit)
    else:
        tz = _zone(schedule.timezone)
        if schedule.cron is not None:
            times = _cron_times(schedule, tz, start, end, limit)
        else:
            times = _interval_times(schedule, tz, start, end, limit)
    return sorted(set(times))[:limit]


def check_schedule(s: Schedule) -> str | None:
    """A user-facing message when the schedule's cron, rrule or timezone is invalid; None when it is fine."""
    problem = schedule_problem(s)
    return None if problem is None else f"schedule {s.slug!r}: {problem}"


def schedule_problem(s: Schedule) -> str | None:
    """What is wrong with the schedule's cron, rrule or timezone, worded "problem; how to fix it" (None when
    nothing is): a cron expression that never matches a date (30 February) counts."""
    probe = datetime(2020, 1, 1, tzinfo=UTC)
    try:
        tz = _rrule_zone(s) if s.rrule is not None else _zone(s.timezone)
        if s.cron is not None and not croniter.is_valid(s.cron):
            _cron(s.cron, probe, s.day_or)  # raises with croniter's reason
            raise ValidationError(f"invalid cron expression {s.cron!r}; {_CRON_HELP}")
        if s.cron is not None and not next_times(s, probe, probe + timedelta(days=366 * 8), limit=1):
            return f"cron expression {s.cron!r} never matches a date; check the day-of-month and month fields"
        if s.rrule is not None:
            _rrule(s, tz, _wall(probe, tz))
    except ValidationError as exc:
        return exc.message
    return None
