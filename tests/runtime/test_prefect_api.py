"""The run-scoped local Prefect API over real HTTP on 127.0.0.1, without Prefect: the server rules flows rely on.

The end-to-end proof with Prefect's own engine is tests/runtime/test_prefect_flows.py; these pin the rules that
engine depends on, and run where no Prefect venv exists.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.runtime.prefect_api import RunRecords, serve


@pytest.fixture
def api() -> Iterator[str]:
    server, url = serve(RunRecords(str(uuid.UUID(int=7)), "wp-run-name"), "3.9.1")
    yield url
    server.shutdown()
    server.server_close()


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def new_flow_run(url: str, **fields: Any) -> dict[str, Any]:
    code, flow = call(url, "POST", "/flows/", {"name": "etl"})
    assert code == 201
    code, run = call(url, "POST", "/flow_runs/", {"flow_id": flow["id"], **fields})
    assert code == 201
    return dict(run)


def propose(url: str, run_id: str, state_type: str, name: str | None = None) -> dict[str, Any]:
    code, result = call(
        url, "POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": state_type, "name": name}}
    )
    assert code == 201
    return dict(result)


def test_the_top_level_flow_run_is_the_wp_run_and_can_be_read_back(api: str) -> None:
    run = new_flow_run(api, state={"type": "PENDING", "name": "Pending"})
    assert run["id"] == str(uuid.UUID(int=7)) and run["name"] == "wp-run-name"
    assert propose(api, run["id"], "RUNNING", "Running")["status"] == "ACCEPT"
    code, read = call(api, "GET", f"/flow_runs/{run['id']}")
    assert code == 200 and read["state_type"] == "RUNNING" and read["run_count"] == 1
    assert read["start_time"] is not None


def test_a_failed_flow_with_retries_left_goes_to_awaiting_retry_then_fails_for_good(api: str) -> None:
    run = new_flow_run(api, empirical_policy={"retries": 1, "retry_delay": 0})
    propose(api, run["id"], "RUNNING")
    first = propose(api, run["id"], "FAILED", "Failed")
    assert first["status"] == "REJECT"
    assert first["state"]["type"] == "SCHEDULED" and first["state"]["name"] == "AwaitingRetry"
    assert propose(api, run["id"], "RUNNING")["status"] == "ACCEPT"  # the retry: run_count 2
    second = propose(api, run["id"], "FAILED", "Failed")
    assert second["status"] == "ACCEPT" and second["state"]["type"] == "FAILED"


def test_a_run_scheduled_in_the_future_waits_before_running(api: str) -> None:
    run = new_flow_run(api, empirical_policy={"retries": 1, "retry_delay": 30})
    propose(api, run["id"], "RUNNING")
    assert propose(api, run["id"], "FAILED")["state"]["name"] == "AwaitingRetry"
    wait = propose(api, run["id"], "RUNNING")
    assert wait["status"] == "WAIT" and 20 < wait["details"]["delay_seconds"] <= 30


def test_a_failure_before_running_is_not_retried(api: str) -> None:
    """Invalid parameters fail a flow run while it is PENDING: no retry, or the flow would run with them."""
    run = new_flow_run(api, empirical_policy={"retries": 3})
    assert propose(api, run["id"], "FAILED")["status"] == "ACCEPT"


def test_subflow_runs_are_found_by_their_parent_task_run(api: str) -> None:
    new_flow_run(api)
    parent_task = str(uuid.uuid4())
    child = new_flow_run(api, parent_task_run_id=parent_task)
    assert child["id"] != str(uuid.UUID(int=7))  # only the top-level run takes the wp run's id
    code, found = call(
        api, "POST", "/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": [parent_task]}}}
    )
    assert code == 200 and [r["id"] for r in found] == [child["id"]]


def test_calls_it_does_not_serve_get_a_404_saying_why(api: str) -> None:
    code, body = call(api, "POST", "/artifacts/", {"key": "report"})
    assert code == 404
    assert body["detail"] == "wp runs Prefect flows without a Prefect server, and POST /artifacts needs one"


def test_the_engine_version_check_and_state_timestamps(api: str) -> None:
    assert call(api, "GET", "/admin/version") == (200, "3.9.1")
    run = new_flow_run(api)
    state = propose(api, run["id"], "RUNNING")["state"]
    stamped = datetime.fromisoformat(state["timestamp"])
    assert abs(stamped - datetime.now(UTC)) < timedelta(seconds=30)
