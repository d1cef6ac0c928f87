"""`wp deployment run`, `wp flow-run ls | inspect` and `wp worker ls`: SPEC §4 JSON without a server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from wp_cli import Wp

RUN_FIELDS = {
    "id", "name", "deployment", "work_pool", "work_queue", "state", "expected_start_time", "parameters",
    "job_variables",
}  # fmt: skip


def test_run_a_deployment_and_list_and_inspect_its_run(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    created = wp("deployment", "run", "say-hello/d", "--param", "seconds=2", "--param", "who=ops", "--json")
    assert created.code == 0, created.stderr
    run = created.json()
    assert set(run) >= RUN_FIELDS
    assert (run["deployment"], run["work_pool"], run["work_queue"], run["state"]) == (
        "say-hello/d",
        "p",
        "urgent",
        "SCHEDULED",
    )
    assert run["parameters"] == {"seconds": 2, "who": "ops"}  # JSON when it parses as JSON, else a string
    assert datetime.fromisoformat(run["expected_start_time"]).utcoffset() is not None
    listing = wp("flow-run", "ls", "--json").json()
    assert [r["id"] for r in listing] == [run["id"]]
    inspected = wp("flow-run", "inspect", run["id"], "--json").json()
    assert set(inspected) >= RUN_FIELDS
    assert inspected["name"] == run["name"]


def test_worker_listing_is_a_json_array(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    result = wp("worker", "ls", "--pool", "p", "--json")
    assert result.code == 0
    assert result.json() == []


def test_running_a_missing_deployment_is_a_clear_error(wp: Wp) -> None:
    result = wp("deployment", "run", "nope/none")
    assert result.code == 1
    assert "nope/none" in result.stderr
