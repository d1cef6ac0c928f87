"""Whole intervals stay whole numbers in `wp export` and in plans (`3600`, not `3600.0`)."""

from __future__ import annotations

from pathlib import Path

from wp_cli import ProjectWriter, Wp


def test_export_and_plans_write_whole_intervals_as_integers(
    wp: Wp, project: ProjectWriter, demo: Path
) -> None:
    hourly = (demo / "wp.yaml").read_text() + "    schedules:\n      - {slug: often, interval: 1800}\n"
    assert wp("apply", project("hourly", hourly), "--auto-approve").code == 0
    exported = wp("export").stdout
    assert "interval: 1800\n" in exported and "1800.0" not in exported
    changed: Path = project("faster", hourly.replace("interval: 1800", "interval: 900"))
    plan = wp("plan", changed).stdout
    assert "interval = 1800 -> 900" in " ".join(plan.split())
