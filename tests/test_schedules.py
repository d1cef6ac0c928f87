"""The schedule calculator: cron, interval and rrule fire times, timezones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from reconciler.errors import ValidationError
from reconciler.model import Schedule
from reconciler.schedules import check_schedule, next_times

BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


def test_cron_in_utc_start_inclusive_end_exclusive() -> None:
    s = Schedule(slug="s", cron="0 2 * * *")
    assert iso(next_times(s, utc(2024, 1, 1, 2), utc(2024, 1, 3, 2))) == [
        "2024-01-01T02:00:00+00:00",
        "2024-01-02T02:00:00+00:00",
    ]


def test_cron_follows_its_timezone() -> None:
    s = Schedule(slug="s", cron="0 9 * * *", timezone="America/New_York")
    assert iso(next_times(s, utc(2024, 7, 1), utc(2024, 7, 2))) == ["2024-07-01T13:00:00+00:00"]


def test_daily_0230_berlin_runs_once_on_spring_forward_day() -> None:
    s = Schedule(slug="s", cron="30 2 * * *", timezone=BERLIN)
    times = next_times(s, utc(2024, 3, 30), utc(2024, 4, 1))
    # 02:30 does not exist on 31 March: the run moves forward by the gap, to 03:30 CEST (01:30 UTC).
    assert iso(times) == ["2024-03-30T01:30:00+00:00", "2024-03-31T01:30:00+00:00"]


def test_daily_0230_berlin_runs_once_on_fall_back_day() -> None:
    s = Schedule(slug="s", cron="30 2 * * *", timezone=BERLIN)
    times = next_times(s, utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    # 02:30 happens twice on 27 October: only the first (CEST, 00:30 UTC) runs.
    assert iso(times) == ["2024-10-27T00:30:00+00:00", "2024-10-28T01:30:00+00:00"]


def test_hourly_cron_keeps_firing_every_real_hour_across_dst() -> None:
    s = Schedule(slug="s", cron="0 * * * *", timezone=BERLIN)
    fall = next_times(s, utc(2024, 10, 26, 23), utc(2024, 10, 27, 3))
    # 02:00 local happens twice (00:00 and 01:00 UTC): both run.
    assert fall == [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 2)]
    spring = next_times(s, utc(2024, 3, 30, 23), utc(2024, 3, 31, 3))
    # 02:00 local is skipped, yet the runs stay one real hour apart.
    assert spring == [utc(2024, 3, 30, 23), utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2)]


def test_interval_default_anchor_is_2020_01_01_in_the_schedule_timezone() -> None:
    s = Schedule(slug="s", interval=6 * 3600, timezone=BERLIN)
    # 2020-01-01T00:00 Berlin is 2019-12-31T23:00 UTC, so every 6 h lands on 05, 11, 17, 23 UTC in winter.
    assert iso(next_times(s, utc(2024, 1, 10), utc(2024, 1, 10, 12))) == [
        "2024-01-10T05:00:00+00:00",
        "2024-01-10T11:00:00+00:00",
    ]


def test_interval_is_an_absolute_duration_across_dst() -> None:
    s = Schedule(slug="s", interval=86400, anchor_date=datetime(2024, 3, 30, 12), timezone=BERLIN)
    times = next_times(s, utc(2024, 3, 30), utc(2024, 4, 2))
    assert [b - a for a, b in pairwise(times)] == [timedelta(days=1)] * 2
    assert times[0] == utc(2024, 3, 30, 11)


def test_interval_with_aware_anchor_and_limit() -> None:
    s = Schedule(slug="s", interval=10, anchor_date=utc(2024, 1, 1, 0, 0, 5))
    assert next_times(s, utc(2024, 1, 1), utc(2024, 1, 2), limit=2) == [
        utc(2024, 1, 1, 0, 0, 5),
        utc(2024, 1, 1, 0, 0, 15),
    ]


def test_rrule_in_the_schedule_timezone_is_dst_correct() -> None:
    s = Schedule(slug="s", rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0", timezone=BERLIN)
    assert iso(next_times(s, utc(2024, 3, 30), utc(2024, 4, 1))) == [
        "2024-03-30T08:00:00+00:00",
        "2024-03-31T07:00:00+00:00",
    ]


def test_rrule_dtstart_with_tzid_is_honoured() -> None:
    s = Schedule(slug="s", rrule="DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO")
    assert iso(next_times(s, utc(2024, 3, 1), utc(2024, 3, 19))) == [
        "2024-03-04T14:00:00+00:00",
        "2024-03-11T13:00:00+00:00",
        "2024-03-18T13:00:00+00:00",
    ]


def test_rrule_count_ends_the_series() -> None:
    s = Schedule(slug="s", rrule="DTSTART:20240101T000000Z\nRRULE:FREQ=DAILY;COUNT=2")
    assert next_times(s, utc(2023, 1, 1), utc(2025, 1, 1)) == [utc(2024, 1, 1), utc(2024, 1, 2)]


def test_a_fine_rrule_with_an_old_dtstart_is_fast() -> None:
    s = Schedule(slug="s", rrule="DTSTART:20200101T000000Z\nRRULE:FREQ=SECONDLY;INTERVAL=7")
    times = next_times(s, utc(2025, 3, 1), utc(2025, 3, 1, 0, 1))
    assert len(times) == 9  # 162 950 400 s after DTSTART is 4 past a multiple of 7: :03, :10, ... :59
    assert all((t - utc(2020, 1, 1)).total_seconds() % 7 == 0 for t in times)


def test_limit_and_empty_window() -> None:
    s = Schedule(slug="s", cron="* * * * *")
    assert len(next_times(s, utc(2024, 1, 1), utc(2024, 1, 2), limit=5)) == 5
    assert next_times(s, utc(2024, 1, 2), utc(2024, 1, 1)) == []


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_times(Schedule(slug="s", cron="* * * * *"), datetime(2024, 1, 1), utc(2024, 1, 2))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Schedule(slug="s", cron="61 * * * *"), "invalid cron expression '61 * * * *'"),
        (Schedule(slug="s", cron="0 0 30 2 *"), "never matches"),
        (Schedule(slug="s", cron="0 0 * * *", timezone="Mars/Olympus"), "unknown timezone 'Mars/Olympus'"),
        (Schedule(slug="s", rrule="FREQ=SOMETIMES"), "invalid rrule"),
    ],
)
def test_check_schedule_explains_what_is_wrong(schedule: Schedule, expected: str) -> None:
    message = check_schedule(schedule)
    assert message is not None and expected in message and "'s'" in message


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(slug="s", cron="61 * * * *"),
        Schedule(slug="s", cron="0 0 * * *", timezone="Mars/Olympus"),
        Schedule(slug="s", rrule="FREQ=SOMETIMES"),
    ],
)
def test_next_times_raises_a_validation_error_for_invalid_schedules(schedule: Schedule) -> None:
    with pytest.raises(ValidationError):
        next_times(schedule, utc(2024, 1, 1), utc(2024, 1, 2))


def test_a_cron_that_never_matches_has_no_times() -> None:
    assert next_times(Schedule(slug="s", cron="0 0 30 2 *"), utc(2024, 1, 1), utc(2030, 1, 1)) == []


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(slug="s", cron="@daily", timezone=BERLIN),
        Schedule(slug="s", interval=30),
        Schedule(slug="s", rrule="FREQ=HOURLY"),
    ],
)
def test_check_schedule_accepts_valid_schedules(schedule: Schedule) -> None:
    assert check_schedule(schedule) is None
