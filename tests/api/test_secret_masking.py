"""Secrets through the HTTP API (issue 10 item 11): every answer masks secret parameters and job variables;
the worker's own call gets them clear; a plan through the server still sees a changed secret; a state message
or log line that echoes a secret is stored masked.

A real SqlStore on SQLite behind the real app (tests/api/conftest.py), reached through HttpStore."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from reconciler.errors import ConflictError, ValidationError
from reconciler.model import FlowRun, LogLine
from reconciler.pipeline import plan_project
from reconciler.secret_values import MIN_MASKED_LENGTH, mask_text, text_masks
from reconciler.store.base import ApplyRecord
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "tok-Q7x9-env-secret"
PASSWORD = "pw-Zr4k-param-secret"
PULL_TOKEN = "ghp-pull-step-secret-77"
DEFAULT_KEY = "pool-default-key-5150"
SECRETS = (TOKEN, PASSWORD, PULL_TOKEN, DEFAULT_KEY)


def _project(root: Path, token: str = TOKEN) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows").mkdir(exist_ok=True)
    (root / "flows" / "f.py").write_text("def leak(db_password='', who='x'):\n    print(db_password)\n")
    (root / "wp.yaml").write_text(
        textwrap.dedent(
            f"""
            project: sec
            work_pools:
              - name: p
                type: process
                base_job_template:
                  job_configuration: {{command: "{{{{ command }}}}", env: "{{{{ env }}}}"}}
                  variables:
                    type: object
                    properties:
                      command: {{type: string, default: ""}}
                      env: {{type: object, default: {{}}}}
                      api_key: {{type: string, default: "{DEFAULT_KEY}"}}
            deployments:
              - name: d
                entrypoint: flows/f.py:leak
                parameters: {{db_password: "{PASSWORD}", who: world}}
                pull:
                  - git_clone: {{repository: "https://git.example/r.git", access_token: "{PULL_TOKEN}"}}
                work_pool:
                  name: p
                  job_variables: {{env: {{API_TOKEN: "{token}", MODE: fast}}}}
                schedules:
                  - {{slug: hourly, interval: 3600, parameters: {{db_password: "{PASSWORD}"}}}}
            """
        )
    )
    return root


def _apply(root: Path, store: HttpStore) -> int:
    outcome = plan_project(root, store, env={}, now=NOW)
    assert outcome.plan is not None, [str(d) for d in outcome.diagnostics]
    actionable = outcome.plan.actionable
    if actionable:
        store.apply(outcome.plan, ApplyRecord(project="sec", actor="t", summary={}))
    return len(actionable)


def _assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets or SECRETS:
        assert secret not in text, f"{secret!r} in {text[:400]}"


def _run(store: HttpStore | SqlStore, **params: object) -> FlowRun:
    run_id = str(uuid.uuid4())
    return store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"r-{run_id[:6]}",
            flow="leak",
            deployment="leak/d",
            work_pool="p",
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=NOW - timedelta(seconds=1),
            parameters=dict(params),
        )
    )


@pytest.fixture
def applied(tmp_path: Path, http_store: HttpStore) -> Path:
    root = _project(tmp_path / "project")
    assert _apply(root, http_store) > 0
    return root


def test_reads_mask_secrets_and_show_the_rest(
    applied: Path, client: TestClient, auth: dict[str, str]
) -> None:
    _run(
        HttpStore("http://testserver", api_key=auth["Authorization"].split()[1], client=client),
        db_password=PASSWORD,
    )
    for path in (
        "/deployments",
        "/deployments/leak/d",
        "/snapshot",
        "/flow_runs",
        "/work_pools",
        "/work_pools/p",
    ):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 200, path
        _assert_no_secret(answer.text)
    deployment = client.get("/deployments/leak/d", headers=auth).json()
    assert deployment["job_variables"]["env"]["MODE"] == "fast"  # not a secret: shown
    assert deployment["job_variables"]["env"]["API_TOKEN"].startswith("(sensitive")
    assert deployment["parameters"] == {
        "db_password": deployment["parameters"]["db_password"],
        "who": "world",
    }
    assert deployment["parameters"]["db_password"].startswith("(sensitive")


def test_a_plan_through_the_server_sees_no_change_then_a_changed_secret(
    applied: Path, http_store: HttpStore, sql_store: SqlStore
) -> None:
    assert _apply(applied, http_store) == 0  # masked values equal to the config's: no change
    _project(applied, token="tok-rotated-value-2")
    outcome = plan_project(applied, http_store, env={}, now=NOW)
    assert outcome.plan is not None
    changed = [c.address for c in outcome.plan.actionable]
    assert changed == ["deployment.leak/d"]
    http_store.apply(outcome.plan, ApplyRecord(project="sec", actor="t", summary={}))
    stored = sql_store.get_deployment("leak", "d")
    assert stored.job_variables["env"]["API_TOKEN"] == "tok-rotated-value-2"
    assert stored.parameters["db_password"] == PASSWORD  # a secret the plan did not change stays clear
    assert _apply(applied, http_store) == 0


def test_a_run_made_from_a_masked_deployment_gets_the_clear_values(
    applied: Path, http_store: HttpStore, sql_store: SqlStore
) -> None:
    masked = http_store.get_deployment("leak", "d")
    run = _run(http_store, **masked.parameters)
    assert sql_store.get_flow_run(run.id).parameters["db_password"] == PASSWORD


def test_a_made_up_mask_is_refused(applied: Path, http_store: HttpStore) -> None:
    with pytest.raises(ValidationError, match="masked"):
        _run(http_store, db_password="(sensitive sha256:0123456789abcdef)")


def test_only_the_worker_holding_a_run_reads_it_clear(applied: Path, http_store: HttpStore) -> None:
    run = _run(http_store, db_password=PASSWORD)
    with pytest.raises(ConflictError, match="w1"):
        http_store.run_inputs(run.id, "w1")  # not claimed yet
    assert [r.id for r in http_store.claim_runs("p", "w1", limit=1, scheduled_before=NOW, now=NOW)] == [
        run.id
    ]
    with pytest.raises(ConflictError, match="w2"):
        http_store.run_inputs(run.id, "w2")
    inputs = http_store.run_inputs(run.id, "w1")
    assert inputs.run.parameters["db_password"] == PASSWORD
    assert inputs.deployment.job_variables["env"]["API_TOKEN"] == TOKEN
    assert inputs.work_pool.base_job_template is not None
    assert inputs.work_pool.base_job_template.variables["properties"]["api_key"]["default"] == DEFAULT_KEY


def test_messages_and_logs_the_server_receives_are_masked(
    applied: Path, http_store: HttpStore, client: TestClient, auth: dict[str, str]
) -> None:
    run = _run(http_store, db_password=PASSWORD)
    http_store.claim_runs("p", "w1", limit=1, scheduled_before=NOW, now=NOW)
    http_store.set_run_state(run.id, "RUNNING", now=NOW)
    http_store.append_logs(
        [
            LogLine(run_id=run.id, timestamp=NOW, message=f"connecting with {PASSWORD} and {TOKEN}", seq=0),
            LogLine(run_id=run.id, timestamp=NOW, message=f"pool key {DEFAULT_KEY}", seq=1),
        ]
    )
    http_store.set_run_state(run.id, "FAILED", message=f"ValueError: bad password {PASSWORD!r}", now=NOW)
    logs = client.get(f"/flow_runs/{run.id}/logs", headers=auth)
    _assert_no_secret(logs.text)
    assert "connecting with (sensitive) and (sensitive)" in logs.text
    state = client.get(f"/flow_runs/{run.id}", headers=auth).json()
    assert state["state_message"] == "ValueError: bad password '(sensitive)'"


def test_text_masks_cover_printed_forms_and_skip_short_values() -> None:
    masks = text_masks({'pa"ss wörd/1', "abc", ""})
    assert "abc" not in masks and "" not in masks
    assert len("abc") < MIN_MASKED_LENGTH
    import base64
    import json
    from urllib.parse import quote

    secret = 'pa"ss wörd/1'
    for form in (
        secret,
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
        quote(secret, safe=""),
    ):
        assert mask_text(f"x {form} y", masks) == "x (sensitive) y"
    assert mask_text("a cab of abc", masks) == "a cab of abc"


def test_a_scheduler_through_the_server_stores_clear_schedule_parameters(
    applied: Path, http_store: HttpStore, sql_store: SqlStore
) -> None:
    from reconciler.runtime.scheduler import Scheduler

    # the scheduler reads deployments masked through the API and copies their parameters into runs
    Scheduler(http_store).tick(NOW)
    [run] = [r for r in sql_store.list_flow_runs(deployment="leak/d") if r.schedule_slug == "hourly"][:1]
    assert run.parameters["db_password"] == PASSWORD
    shown = http_store.get_flow_run(run.id)
    assert shown.parameters["db_password"].startswith("(sensitive sha256:")


def test_a_plan_that_keeps_a_masked_live_value_stores_the_clear_one(
    applied: Path, http_store: HttpStore, sql_store: SqlStore
) -> None:
    from reconciler.engine.plan import Action, Change, Plan
    from reconciler.model import attributes, deployment_key

    key = deployment_key("leak", "d")
    snapshot = http_store.snapshot(only=[key])
    live = snapshot.objects[key]
    # e.g. `ignore_changes: [job_variables]`: the plan takes the live value, which it read masked
    after = {**attributes(live.value), "description": "edited"}
    plan = Plan(
        project="sec",
        changes=(Change(key, Action.UPDATE, attributes(live.value), after),),
        fingerprints={key.address: live.fingerprint},
    )
    http_store.apply(plan, ApplyRecord(project="sec", actor="t", summary={}))
    stored = sql_store.get_deployment("leak", "d")
    assert stored.description == "edited"
    assert stored.job_variables["env"]["API_TOKEN"] == TOKEN and stored.parameters["db_password"] == PASSWORD


def test_a_projects_own_secret_patterns_mask_api_answers_and_logs_too(
    tmp_path: Path, http_store: HttpStore, client: TestClient, auth: dict[str, str]
) -> None:
    root = _project(tmp_path / "own")
    text = (root / "wp.yaml").read_text()
    creds = "creds-value-Hq21-own-pattern"
    text = text.replace("project: sec\n", "project: sec\nsecret_patterns: ['*CREDS*']\n")
    text = text.replace("who: world}", f"who: world, db_creds: {creds}}}")
    (root / "wp.yaml").write_text(text)
    (root / "flows" / "f.py").write_text("def leak(db_password='', who='x', db_creds=''):\n    pass\n")
    assert _apply(root, http_store) > 0
    assert _apply(root, http_store) == 0  # the plan through the server still matches its masked value
    for path in ("/deployments", "/snapshot", "/deployments/leak/d"):
        answer = client.get(path, headers=auth)
        _assert_no_secret(answer.text, creds)
    run = _run(http_store, db_creds=creds)
    http_store.claim_runs("p", "w1", limit=1, scheduled_before=NOW, now=NOW)
    assert http_store.run_inputs(run.id, "w1").secret_patterns[-1] == "*CREDS*"
    http_store.append_logs([LogLine(run_id=run.id, timestamp=NOW, message=f"using {creds}", seq=0)])
    _assert_no_secret(client.get(f"/flow_runs/{run.id}/logs", headers=auth).text, creds)
    _assert_no_secret(client.get("/flow_runs", headers=auth).text, creds)
    client.post("/ui/login", data={"key": auth["Authorization"].split()[1], "next": "/ui/pools"})
    for page in ("/ui/deployments/leak/d", f"/ui/runs/{run.id}"):
        shown = client.get(page)
        assert shown.status_code == 200 and "(sensitive)" in shown.text, page
        _assert_no_secret(shown.text, creds)
