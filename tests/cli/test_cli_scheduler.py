"""`wp scheduler`: the scheduler without a server, on the embedded store."""

from __future__ import annotations

from wp_cli import ProjectWriter, Wp

from reconciler.store.sql import SqlStore

HOURLY = """\
project: demo
work_pools:
  - {name: p, type: process}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p}
    schedules:
      - {slug: hourly, interval: 3600}
"""


def test_one_tick_creates_the_next_runs_once(wp: Wp, project: ProjectWriter, live_store: SqlStore) -> None:
    directory = project("project", HOURLY)
    assert wp("apply", directory, "--auto-approve").code == 0
    first = wp("scheduler", "--once", "--json").json()
    assert first["created"] >= 3  # at least 3 runs and at least 1 h ahead
    runs = live_store.list_flow_runs(deployment="say-hello/d")
    assert len(runs) == first["created"]
    assert {r.state for r in runs} == {"SCHEDULED"} and {r.schedule_slug for r in runs} == {"hourly"}
    assert wp("scheduler", "--once", "--json").json()["created"] == 0  # idempotent


def test_a_paused_deployment_gets_no_runs(wp: Wp, project: ProjectWriter, live_store: SqlStore) -> None:
    directory = project("project", HOURLY.replace("    schedules:", "    paused: true\n    schedules:"))
    assert wp("apply", directory, "--auto-approve").code == 0
    assert wp("scheduler", "--once", "--json").json()["created"] == 0
    assert live_store.list_flow_runs(deployment="say-hello/d") == []
