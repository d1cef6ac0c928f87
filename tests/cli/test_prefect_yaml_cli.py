"""prefect.yaml through the CLI: what `wp validate` and `wp plan` report (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import write_project
from tests.wp_cli import Wp

NO_POOL = """
deployments:
  - name: first
    entrypoint: flows/hello.py:say_hello
  - name: second
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: null, job_variables: {}}
"""


def test_deployments_without_a_pool_are_errors_at_their_lines_in_validate_and_plan(
    wp: Wp, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "nopool", "project: p\nwork_pools: [{name: local}]\n")
    (root / "prefect.yaml").write_text(NO_POOL)
    validated = wp("validate", root, "--json")
    assert validated.code == 1
    found = [
        (d["file"], d["line"], d["summary"])
        for d in validated.json()["diagnostics"]
        if d["severity"] == "error"
    ]
    assert found == [
        ("prefect.yaml", 3, "deployment 'say-hello/first' names no work pool, and no pool is marked default"),
        (
            "prefect.yaml",
            5,
            "deployment 'say-hello/second' names no work pool, and no pool is marked default",
        ),
    ]
    assert "work_pool: {name: local}" in validated.json()["diagnostics"][0]["detail"]
    planned = wp("plan", root)
    assert planned.code == 1
    assert "prefect.yaml:3:5" in planned.stderr and "prefect.yaml:5:5" in planned.stderr
    assert "names no work pool" in planned.stderr


def test_a_deployment_without_a_pool_is_fine_when_a_pool_is_marked_default(wp: Wp, tmp_path: Path) -> None:
    root = write_project(tmp_path / "withdefault", "project: p\n")
    (root / "prefect.yaml").write_text(NO_POOL)
    assert wp("work-pool", "create", "shared", "--type", "process", "--set-as-default").code == 0
    assert wp("validate", root).code == 0
    assert wp("plan", root, "--detailed-exitcode").code == 2


# --- 11. references to Kubernetes Secrets are shown; secret values stay masked ----------------------------

REFERENCES = """
project: refs
work_pools:
  - name: k8s
    type: kubernetes
    base_job_template:
      job_configuration:
        pull: "{{ image_pull_secrets }}"
        volume: "{{ secret_name }}"
        env: "{{ env }}"
        env_from: "{{ env_from }}"
        token: "{{ api_token }}"
      variables:
        type: object
        properties:
          image_pull_secrets: {type: array, default: []}
          secret_name: {type: string, default: ""}
          env: {default: []}
          env_from: {type: array, default: []}
          api_token: {type: string, default: ""}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    parameters: {db_password: hunter2}
    work_pool:
      name: k8s
      job_variables:
        image_pull_secrets: [{name: regcred, token: tok-456}]
        secret_name: app-secrets
        api_token: tok-123
        env_from: [{secretRef: {name: app-env}}]
        env:
          - {name: DB_PASSWORD, value: s3cret}
          - name: API_KEY
            valueFrom: {secretKeyRef: {name: api, key: key-in-secret}}
          - {name: REGION, value: eu}
"""


def test_secret_references_are_shown_and_secret_values_masked_in_the_plan(wp: Wp, tmp_path: Path) -> None:
    root = write_project(tmp_path / "refs", REFERENCES)
    result = wp("plan", root, "--format", "json")
    assert result.code == 0, result.stderr
    text = result.stdout
    assert "hunter2" not in text and "s3cret" not in text and "tok-123" not in text and "tok-456" not in text
    [dep] = [c for c in result.json()["resource_changes"] if c["kind"] == "deployment"]
    variables = dep["after"]["job_variables"]
    assert variables["image_pull_secrets"] == [{"name": "regcred", "token": "(sensitive)"}]
    assert variables["secret_name"] == "app-secrets"
    assert variables["env_from"] == [{"secretRef": {"name": "app-env"}}]
    assert variables["api_token"] == "(sensitive)"
    assert variables["env"] == [
        {"name": "DB_PASSWORD", "value": "(sensitive)"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "key-in-secret"}}},
        {"name": "REGION", "value": "eu"},
    ]
    assert dep["after"]["parameters"] == {"db_password": "(sensitive)"}
    shown = wp("plan", root)
    assert "regcred" in shown.stdout and "app-secrets" in shown.stdout and "key-in-secret" in shown.stdout
    assert "hunter2" not in shown.stdout and "s3cret" not in shown.stdout and "tok-123" not in shown.stdout


def test_the_process_working_dir_says_where_runs_start(wp: Wp) -> None:
    result = wp("work-pool", "get-default-base-job-template", "--type", "process")
    described = result.json()["variables"]["properties"]["working_dir"]["description"]
    assert "temporary directory" not in described
    assert "the directory the worker was started in" in described


# --- 10. `wp deployment run --param` is checked against the flow's signature --------------------------------

GREETER = """
from prefect import flow


@flow
def hello(who: str = "world", times: int = 1) -> None:
    print(who * times)
"""
GREETER_PREFECT = """
deployments:
  - name: greet
    entrypoint: flows/greet.py:hello
    work_pool: {name: local}
"""


def test_run_params_are_checked_against_the_signature_where_the_code_is(
    wp: Wp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "greet", "project: p\nwork_pools: [{name: local}]\n")
    (root / "flows" / "greet.py").write_text(GREETER)
    (root / "prefect.yaml").write_text(GREETER_PREFECT)
    assert wp("apply", root, "--auto-approve").code == 0
    monkeypatch.chdir(tmp_path)  # elsewhere: the code is found through the recorded working directory
    wrong = wp("deployment", "run", "hello/greet", "--param", "whom=x", "--param", "times=lots")
    assert wrong.code == 1
    assert "hello(who, times) has no parameter 'whom'" in wrong.stderr
    assert "parameter 'times' of hello(who, times) is annotated int, got 'lots'" in wrong.stderr
    assert wp("flow-run", "ls", "--json").json() == []
    right = wp("deployment", "run", "hello/greet", "--param", "who=you", "--param", "times=2")
    assert right.code == 0, right.stderr
