"""A plan of thousands of changes is readable: a count per kind and action, full detail on request."""

from __future__ import annotations

from wp_cli import ProjectWriter, Wp

POOL = "project: big\nwork_pools: [{name: p, type: process}]\ndeployments:\n"


def _many(n: int) -> str:
    return POOL + "".join(
        f"  - {{name: d{i}, entrypoint: flows/hello.py:say_hello, work_pool: {{name: p}}}}\n"
        for i in range(n)
    )


def test_a_large_plan_is_compact_unless_full_is_asked(wp: Wp, project: ProjectWriter) -> None:
    big = project("big", _many(120))
    compact = wp("plan", big)
    assert compact.code == 0
    lines = compact.stdout.splitlines()
    assert len(lines) < 15, compact.stdout
    assert "  deployment: 120 to add" in lines and "  work_pool: 1 to add" in lines
    assert "Plan: 121 to add, 0 to change, 0 to destroy." in lines
    full = wp("plan", big, "--full")
    assert full.stdout.count("will be created") == 121


def test_compact_on_request_for_a_small_plan(wp: Wp, project: ProjectWriter) -> None:
    small = wp("plan", project("small", _many(2)), "--compact")
    assert "  deployment: 2 to add" in small.stdout.splitlines()
    assert "will be created" not in small.stdout


def test_a_large_apply_prints_the_counts_and_applies_every_change(wp: Wp, project: ProjectWriter) -> None:
    big = project("big", _many(150))
    applied = wp("apply", big, "--auto-approve")
    assert applied.code == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert len(lines) < 15, applied.stdout
    assert "  deployment: 150 to add" in lines
    assert "Apply complete! Resources: 151 added, 0 changed, 0 destroyed." in lines
    listed = wp("deployment", "ls", "--json")
    assert listed.code == 0 and len(listed.json()) == 150
