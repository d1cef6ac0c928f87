"""`wp deployment ls | inspect` in SPEC §4's JSON shape, secrets masked."""

from __future__ import annotations

from wp_cli import ProjectWriter, Wp

DEPLOYMENT_FIELDS = {
    "flow", "name", "entrypoint", "work_pool", "work_queue", "job_variables", "parameters", "schedules", "tags",
    "paused",
}  # fmt: skip

CONFIG = """\
project: demo
work_pools: [{name: p, type: process, queues: [{name: urgent, priority: 1}]}]
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    parameters: {db_password: hunter2, name: ops}
    work_pool: {name: p, work_queue_name: urgent}
    schedules: [{slug: hourly, interval: 3600}]
    tags: [demo]
"""


def test_deployment_listing_and_inspect_print_only_spec_json(wp: Wp, project: ProjectWriter) -> None:
    assert wp("apply", project("demo", CONFIG), "--auto-approve").code == 0
    listing = wp("deployment", "ls", "--json")
    assert "hunter2" not in listing.stdout
    [deployment] = listing.json()
    assert set(deployment) >= DEPLOYMENT_FIELDS
    assert (deployment["flow"], deployment["work_pool"], deployment["work_queue"]) == (
        "say-hello",
        "p",
        "urgent",
    )
    assert deployment["parameters"] == {"db_password": "(sensitive)", "name": "ops"}
    assert [s["slug"] for s in deployment["schedules"]] == ["hourly"]
    inspected = wp("deployment", "inspect", "say-hello/d", "--json").json()
    assert set(inspected) >= DEPLOYMENT_FIELDS
    assert inspected["tags"] == ["demo"]


def test_inspect_with_a_bad_address_is_a_clear_error(wp: Wp) -> None:
    result = wp("deployment", "inspect", "no-slash")
    assert result.code == 1
    assert "is not FLOW/NAME" in result.stderr
