"""Schedules as written: interval durations as prefect.yaml writes them, and rules checked before any apply."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.load import load_project
from reconciler.config.schema import duration_seconds

Write = Callable[..., Path]


def _project(*schedules: str) -> str:
    lines = [
        "project: p",
        "work_pools: [{name: a, type: process}]",
        "deployments:",
        "  - name: d",
        "    entrypoint: flows/etl.py:etl",
        "    work_pool: {name: a}",
        "    schedules:",
    ]
    return "\n".join(lines + [f"      - {s}" for s in schedules]) + "\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),
        ("PT10M", 600),
        ("P1DT2H", 93_600),
        ("1:30:00", 5_400),
        ("1 day, 0:00:30", 86_430),
        ("PT0.5S", 0.5),
        ("  PT1H ", 3_600),
    ],
)
def test_interval_text_is_read_as_prefect_reads_it(text: str, seconds: float) -> None:
    value = duration_seconds(text)
    assert value == seconds
    assert isinstance(value, int) == float(seconds).is_integer()  # whole seconds stay whole, as in plans


def test_an_interval_written_as_a_duration_is_the_same_schedule_as_its_seconds(write: Write) -> None:
    as_text = load_project(write({"wp.yaml": _project("{interval: PT10M}", "{interval: '1:30:00'}")}), {})
    as_seconds = load_project(write({"wp.yaml": _project("{interval: 600}", "{interval: 5400}")}), {})
    assert as_text.diagnostics == []
    assert as_text.desired is not None and as_seconds.desired is not None
    # same values, and so the same derived slugs: rewriting 600 as PT10M is not a change
    assert as_text.desired.deployments[0].schedules == as_seconds.desired.deployments[0].schedules
    assert sorted(s.interval or 0 for s in as_text.desired.deployments[0].schedules) == [600, 5400]


def test_prefect_yaml_intervals_may_be_durations(write: Write) -> None:
    prefect = """
    deployments:
      - name: hourly
        entrypoint: flows/etl.py:etl
        work_pool: {name: a}
        schedules:
          - interval: PT1H
            anchor_date: "2024-01-01T00:00:00"
    """
    loaded = load_project(
        write({"wp.yaml": "project: p\nwork_pools: [{name: a}]\n", "prefect.yaml": prefect}), {}
    )
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    [schedule] = loaded.desired.deployments[0].schedules
    assert schedule.interval == 3600


@pytest.mark.parametrize(
    ("schedule", "column", "summary", "detail"),
    [
        (
            "{interval: every ten minutes}",
            20,
            "wrong value for 'interval': 'every ten minutes' is not a duration",
            "write seconds (600), ISO 8601 (PT10M) or hours:minutes:seconds (1:30:00)",
        ),
        (
            "{rrule: 'FREQ=SOMETIMES'}",
            17,
            "invalid rrule 'FREQ=SOMETIMES': invalid 'FREQ': SOMETIMES",
            "expected RFC 5545 text such as 'FREQ=DAILY;BYHOUR=9;BYMINUTE=0'",
        ),
        (
            "{cron: '0 0 31 2 *'}",
            16,
            "cron expression '0 0 31 2 *' never matches a date",
            "check the day-of-month and month fields",
        ),
    ],
)
def test_a_schedule_that_could_never_run_is_an_error_at_its_line(
    write: Write, schedule: str, column: int, summary: str, detail: str
) -> None:
    loaded = load_project(write({"wp.yaml": _project("{cron: '0 * * * *'}", schedule)}), {})
    assert loaded.desired is None
    [diag] = loaded.diagnostics
    assert (diag.location, diag.summary, diag.detail) == (f"wp.yaml:9:{column}", summary, detail)


def test_rule_checks_follow_the_schedule_timezone(write: Write) -> None:
    ok = _project(
        '{rrule: "DTSTART;TZID=Europe/Berlin:20240101T090000\\nRRULE:FREQ=DAILY", timezone: Europe/Berlin}'
    )
    assert load_project(write({"wp.yaml": ok}), {}).diagnostics == []
    bad_zone = _project("{rrule: 'FREQ=DAILY', timezone: Mars/Olympus}")
    [diag] = load_project(write({"wp.yaml": bad_zone}), {}).diagnostics
    assert diag.summary == "unknown timezone 'Mars/Olympus'"  # said once, not again as an rrule problem


def test_prefect_yaml_rrule_written_as_its_json_object(write: Write) -> None:
    prefect = """
    deployments:
      - name: morning
        entrypoint: flows/etl.py:etl
        work_pool: {name: a}
        schedules:
          - rrule: '{"rrule": "FREQ=DAILY;BYHOUR=9", "timezone": "Europe/Berlin"}'
          - rrule: '{"rrule": "FREQ=DAILY;BYHOUR=10", "timezone": "Europe/Berlin"}'
            timezone: UTC
    """
    loaded = load_project(
        write({"wp.yaml": "project: p\nwork_pools: [{name: a}]\n", "prefect.yaml": prefect}), {}
    )
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    schedules = sorted(loaded.desired.deployments[0].schedules, key=lambda s: s.rrule or "")
    assert [(s.rrule, s.timezone) for s in schedules] == [
        ("FREQ=DAILY;BYHOUR=10", "UTC"),  # the timezone written beside it wins
        ("FREQ=DAILY;BYHOUR=9", "Europe/Berlin"),
    ]
