"""`wp export`, `wp import` and `wp explain`: live objects back to configuration, and where values come from."""

from __future__ import annotations

import json
from pathlib import Path

from wp_cli import ProjectWriter, Wp

SECRET_PROJECT = """\
project: demo
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
    queues: [{name: urgent, priority: 1, concurrency_limit: 2}]
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    parameters: {name: ops}
    tags: [demo]
    work_pool:
      name: p
      work_queue_name: urgent
      job_variables: {env: {API_TOKEN: "${TOKEN}", LOG_LEVEL: info}}
    schedules:
      - {slug: hourly, interval: 3600}
      - {slug: nightly, cron: "0 2 * * *", timezone: Europe/Berlin}
"""


def test_export_reapplied_in_a_fresh_store_has_no_changes(
    wp: Wp, project: ProjectWriter, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {"TOKEN": "s3cr3t-value"}
    assert wp("apply", project("source", SECRET_PROJECT), "--auto-approve", env=env).code == 0
    assert wp("work-pool", "create", "byhand", "--concurrency-limit", "3").code == 0
    exported = wp("export", "--format", "yaml")
    assert exported.code == 0
    assert "s3cr3t-value" not in exported.stdout
    assert "${D_ENV_API_TOKEN}" in exported.stdout  # the secret becomes a reference to fill in

    copy = project("copy", exported.stdout.replace("project: imported", "project: copy"))
    fresh: dict[str, str | None] = {"WP_HOME": str(tmp_path / "fresh"), "D_ENV_API_TOKEN": "s3cr3t-value"}
    assert wp("apply", copy, "--auto-approve", env=fresh).code == 0
    again = wp("plan", copy, "--detailed-exitcode", env=fresh)
    assert again.code == 0, again.stdout
    assert "No changes" in again.stdout


def test_import_writes_config_for_a_pool_made_by_hand(wp: Wp, demo: Path, tmp_path: Path) -> None:
    assert wp("work-pool", "create", "byhand", "--concurrency-limit", "3", "--description", "ops").code == 0
    out = tmp_path / "imported"
    result = wp("import", "work_pool.byhand", "--out", out)
    assert result.code == 0
    text = (out / "imported.yaml").read_text()
    assert "name: byhand" in text
    assert "concurrency_limit: 3" in text
    # Included into a project, the next apply adopts it without changing it.
    (demo / "pools").mkdir()
    (demo / "pools" / "imported.yaml").write_text(text)
    wp_yaml = demo / "wp.yaml"
    wp_yaml.write_text('include: ["pools/*.yaml"]\n' + wp_yaml.read_text())
    plan = wp("plan", demo, "--format", "json").json()
    adopted = next(c for c in plan["resource_changes"] if c["address"] == "work_pool.byhand")
    assert adopted["actions"] == ["update"]
    assert adopted["attribute_changes"] == []


def test_import_of_a_missing_object_is_a_clear_error(wp: Wp) -> None:
    result = wp("import", "work_pool.nowhere")
    assert result.code == 1
    assert "work_pool.nowhere not found" in result.stderr


def test_explain_shows_each_variable_with_its_source(wp: Wp, project: ProjectWriter) -> None:
    env: dict[str, str | None] = {"TOKEN": "s3cr3t-value"}
    assert wp("apply", project("source", SECRET_PROJECT), "--auto-approve", env=env).code == 0
    result = wp("explain", "deployment.say-hello/d", "--json")
    assert result.code == 0
    explained = result.json()
    assert explained["sources"]["env.LOG_LEVEL"] == "deployment"
    assert explained["sources"]["stream_output"] == "default"
    assert explained["job_configuration"]["env"] == {"API_TOKEN": "(sensitive)", "LOG_LEVEL": "info"}
    assert "s3cr3t-value" not in result.stdout


def test_explain_of_a_missing_deployment_is_a_clear_error(wp: Wp) -> None:
    result = wp("explain", "deployment.nope/none")
    assert result.code == 1
    assert "nope/none" in result.stderr


def test_explain_of_an_address_without_flow_and_name_says_how_to_write_it(wp: Wp) -> None:
    result = wp("explain", "deployment.nightly")
    assert result.code == 1
    assert "names no deployment" in result.stderr and "deployment.FLOW/NAME" in result.stderr


def test_explain_masks_by_the_projects_own_secret_patterns_too(wp: Wp, project: ProjectWriter) -> None:
    own = SECRET_PROJECT.replace("project: demo\n", "project: demo\nsecret_patterns: ['*_CREDS']\n").replace(
        "LOG_LEVEL: info}", "LOG_LEVEL: info, VAULT_CREDS: vault-creds-9f3}"
    )
    assert wp("apply", project("source", own), "--auto-approve", env={"TOKEN": "t0ken-v"}).code == 0
    for argv in (("deployment.say-hello/d", "--json"), ("deployment.say-hello/d",)):
        result = wp("explain", *argv)
        assert result.code == 0, result.stderr
        assert "vault-creds-9f3" not in result.stdout and "t0ken-v" not in result.stdout
    env = wp("explain", "deployment.say-hello/d", "--json").json()["job_configuration"]["env"]
    assert env == {"API_TOKEN": "(sensitive)", "LOG_LEVEL": "info", "VAULT_CREDS": "(sensitive)"}


def test_views_of_a_local_store_mask_by_the_projects_own_secret_patterns(
    wp: Wp, project: ProjectWriter, tmp_path: Path
) -> None:
    own = SECRET_PROJECT.replace("project: demo\n", "project: demo\nsecret_patterns: ['*_CREDS']\n").replace(
        "LOG_LEVEL: info}", "LOG_LEVEL: info, VAULT_CREDS: vault-creds-9f3}"
    )
    assert wp("apply", project("source", own), "--auto-approve", env={"TOKEN": "t0ken-v"}).code == 0
    template = {
        "job_configuration": {"env": {"DB_CREDS": "{{ db_creds }}"}},
        "variables": {
            "type": "object",
            "properties": {"db_creds": {"type": "string", "default": "db-creds-4e1"}},
        },
    }
    (tmp_path / "template.json").write_text(json.dumps(template))
    made = wp("work-pool", "create", "byhand", "--base-job-template", str(tmp_path / "template.json"))
    assert made.code == 0, made.stderr
    run = wp("deployment", "run", "say-hello/d", "--json")
    assert run.code == 0, run.stderr
    for argv in (
        ("deployment", "inspect", "say-hello/d", "--json"),
        ("deployment", "ls", "--json"),
        ("work-pool", "inspect", "byhand"),
        ("work-pool", "ls", "--json"),
        ("flow-run", "ls", "--json"),
        ("flow-run", "inspect", run.json()["id"], "--json"),
    ):
        shown = wp(*argv)
        assert shown.code == 0, shown.stderr
        assert "vault-creds-9f3" not in shown.stdout and "db-creds-4e1" not in shown.stdout, argv
    variables = wp("deployment", "inspect", "say-hello/d", "--json").json()["job_variables"]
    assert variables["env"]["VAULT_CREDS"] == "(sensitive)"
