"""A run's parameters are checked against the flow's signature recorded at apply (the deployment's
`parameter_schema`, like Prefect's `parameter_openapi_schema`), so the check holds where the code is not:
`wp deployment run --param` on another machine, the API's run creation and the web UI's trigger."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_projects import FLOW
from starlette.testclient import TestClient
from wp_cli import Wp

from reconciler.api import create_app
from reconciler.store.sql import SqlStore
from tests.cli.conftest import write_project

GREETER = """
def greet(who: str, times: int = 1, loud: bool = False) -> None:
    print(who * times)
"""
PROJECT = """\
project: p
work_pools: [{name: local}]
deployments:
  - name: greet
    entrypoint: flows/greet.py:greet
    parameters: {who: world}
    work_pool: {name: local}
  - name: bare
    entrypoint: flows/greet.py:greet
    work_pool: {name: local}
"""
KEY = "k8sfid-key"


@pytest.fixture
def applied(wp: Wp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project applied, then its code removed and the shell elsewhere: nothing can be read statically."""
    root = write_project(tmp_path / "greet", PROJECT)
    (root / "flows" / "greet.py").write_text(GREETER)
    applied = wp("apply", root, "--auto-approve")
    assert applied.code == 0, applied.stderr
    shutil.rmtree(root / "flows")
    monkeypatch.chdir(tmp_path)
    return root


def test_the_parameter_schema_is_recorded_at_apply(wp: Wp, applied: Path) -> None:
    schema = wp("deployment", "inspect", "greet/greet", "--json").json()["parameter_schema"]
    assert schema["required"] == ["who"]
    assert list(schema["properties"]) == ["who", "times", "loud"]
    assert schema["properties"]["times"]["type"] == "integer"
    assert schema["properties"]["times"]["default"] == 1


def test_run_params_are_checked_against_the_recorded_signature_where_the_code_is_not(
    wp: Wp, applied: Path
) -> None:
    wrong = wp("deployment", "run", "greet/greet", "--param", "whom=x", "--param", "times=lots")
    assert wrong.code == 1
    assert "greet(who, times, loud) has no parameter 'whom'" in wrong.stderr
    assert "parameter 'times' of greet(who, times, loud) is annotated int, got 'lots'" in wrong.stderr
    missing = wp("deployment", "run", "greet/bare")
    assert missing.code == 1
    assert "greet(who, times, loud) requires who" in missing.stderr
    assert wp("flow-run", "ls", "--json").json() == []
    right = wp("deployment", "run", "greet/bare", "--param", "who=you", "--param", "times=2")
    assert right.code == 0, right.stderr


def test_a_flow_taking_any_keyword_accepts_any_name(wp: Wp, tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "kw",
        "project: p\nwork_pools: [{name: local}]\ndeployments:\n"
        "  - {name: d, entrypoint: flows/hello.py:say_hello, work_pool: {name: local}}\n",
    )
    assert "**settings" in FLOW
    assert wp("apply", root, "--auto-approve").code == 0
    shutil.rmtree(root / "flows")
    ran = wp("deployment", "run", "say-hello/d", "--param", "anything=1", "--param", "name=x")
    assert ran.code == 0, ran.stderr


@pytest.fixture
def client(applied: Path, home: Path) -> Iterator[TestClient]:
    store = SqlStore(f"sqlite:///{home / 'wp.db'}")
    with TestClient(create_app(store, api_key=KEY), base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def _run_body(parameters: dict[str, object]) -> dict[str, object]:
    return {
        "id": "0b7f3c1e-5d7a-4c9e-8f00-00000000abcd",
        "name": "tidy-otter",
        "flow": "greet",
        "deployment": "greet/greet",
        "work_pool": "local",
        "work_queue": "default",
        "state": "SCHEDULED",
        "expected_start_time": "2026-01-01T00:00:00Z",
        "parameters": parameters,
    }


def test_the_api_refuses_a_run_whose_parameters_the_flow_cannot_take(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    refused = client.post("/flow_runs", json=_run_body({"who": "x", "whom": "y"}), headers=auth)
    assert refused.status_code == 422, refused.text
    assert "greet(who, times, loud) has no parameter 'whom'" in refused.text
    refused = client.post("/flow_runs", json=_run_body({"times": 2}), headers=auth)
    assert refused.status_code == 422 and "requires who" in refused.text
    created = client.post("/flow_runs", json=_run_body({"who": "x", "times": 2}), headers=auth)
    assert created.status_code == 201, created.text


def test_the_web_ui_trigger_refuses_parameters_the_flow_cannot_take(client: TestClient) -> None:
    import re

    page = client.post("/ui/login", data={"key": KEY, "next": "/ui/pools"})
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert token is not None
    refused = client.post(
        "/ui/actions/deployments/greet/greet/run",
        data={"csrf": token.group(1), "parameters": '{"loud": "yes"}'},
        headers={"X-WP-Fetch": "1"},
    )
    assert refused.status_code == 422
    assert (
        "parameter 'loud' of greet(who, times, loud) is annotated bool, got 'yes'"
        in refused.json()["message"]
    )
    created = client.post(
        "/ui/actions/deployments/greet/greet/run",
        data={"csrf": token.group(1), "parameters": '{"loud": true}'},
        headers={"X-WP-Fetch": "1"},
    )
    assert created.json()["ok"], created.text


def test_a_secret_looking_default_is_not_recorded(wp: Wp, tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "secret",
        "project: p\nwork_pools: [{name: local}]\ndeployments:\n"
        "  - {name: d, entrypoint: flows/load.py:load, work_pool: {name: local}}\n",
    )
    (root / "flows" / "load.py").write_text(
        "def load(api_token: str = 'tok-123456', rows: int = 5) -> None:\n    pass\n"
    )
    assert wp("apply", root, "--auto-approve").code == 0
    shown = wp("deployment", "inspect", "load/d", "--json")
    assert "tok-123456" not in shown.stdout
    assert shown.json()["parameter_schema"]["properties"]["rows"]["default"] == 5
