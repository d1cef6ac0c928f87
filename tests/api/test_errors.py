"""Error answers: 404/409/422/423 come as `{"error": {"type", "message", "path"}}` naming what is wrong."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"type", "message", "path"}
    return error


def test_404_names_the_missing_object(client: TestClient, auth: dict[str, str]) -> None:
    error = _error(client.get("/work_pools/nope", headers=auth), 404)
    assert error["type"] == "NotFoundError"
    assert "nope" in error["message"]
    error = _error(client.get("/deployments/etl/nightly", headers=auth), 404)
    assert "etl/nightly" in error["message"] or "nightly" in error["message"]


def test_409_on_a_duplicate_pool(client: TestClient, auth: dict[str, str]) -> None:
    assert client.post("/work_pools", json={"name": "p"}, headers=auth).status_code == 201
    error = _error(client.post("/work_pools", json={"name": "p"}, headers=auth), 409)
    assert error["type"] == "ConflictError"
    assert "p" in error["message"]
    # overwrite is the documented way out
    assert client.post("/work_pools", json={"name": "p", "overwrite": True}, headers=auth).status_code == 201


def test_422_names_the_field_at_fault(client: TestClient, auth: dict[str, str]) -> None:
    error = _error(client.post("/work_pools", json={"name": "p", "concurrency_limit": -1}, headers=auth), 422)
    assert error["path"] == "concurrency_limit"
    assert "concurrency_limit" in error["message"]

    error = _error(client.post("/work_pools", json={"name": "a/b"}, headers=auth), 422)
    assert error["path"] == "name"
    assert "/ % & > <" in error["message"]

    error = _error(client.get("/flow_runs", params={"limit": 0}, headers=auth), 422)
    assert error["path"] == "limit"
    assert "query parameter limit" in error["message"]

    error = _error(client.post("/work_pools", json={"name": "p", "colour": "red"}, headers=auth), 422)
    assert error["path"] == "colour"


def test_422_on_a_body_that_is_not_json(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/work_pools", content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    error = _error(response, 422)
    assert error["type"] == "ValidationError"


def test_422_for_a_domain_rule_carries_the_store_message(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/work_pools", json={"name": "p"}, headers=auth)
    error = _error(client.delete("/work_pools/p/queues/default", headers=auth), 422)
    assert error["type"] == "ValidationError"
    assert "default" in error["message"]


def test_423_when_the_lock_is_held(client: TestClient, auth: dict[str, str]) -> None:
    first = client.post("/lock", json={"holder": "alice", "operation": "apply"}, headers=auth)
    assert first.status_code == 201
    error = _error(client.post("/lock", json={"holder": "bob", "operation": "apply"}, headers=auth), 423)
    assert error["type"] == "LockHeldError"
    assert "alice" in error["message"]


def test_apply_refuses_a_malformed_plan_naming_the_change(client: TestClient, auth: dict[str, str]) -> None:
    body = {
        "plan": {
            "project": "demo",
            "changes": [
                {"address": "work_pool.p", "action": "create", "after": {"name": "p", "paused": "?"}}
            ],
        },
        "record": {"project": "demo", "actor": "me", "summary": {"add": 1}},
    }
    error = _error(client.post("/apply", json=body, headers=auth), 422)
    assert error["path"] is not None and error["path"].startswith("plan.changes[0]")
    body["plan"]["changes"][0]["address"] = "pool.p"  # type: ignore[index]
    error = _error(client.post("/apply", json=body, headers=auth), 422)
    assert "unknown kind" in error["message"]


def test_422_for_a_keyed_snapshot_of_a_malformed_address(client: TestClient, auth: dict[str, str]) -> None:
    error = _error(client.get("/snapshot", params={"keyed": "true", "only": "pool-a"}, headers=auth), 422)
    assert error["type"] == "ValidationError"
    assert error["path"] == "only" and "pool-a" in error["message"]
    # the same address in its KIND.NAME form is a (here empty) answer, not an error
    fine = client.get("/snapshot", params={"keyed": "true", "only": "work_pool.pool-a"}, headers=auth)
    assert fine.status_code == 200 and fine.json()["objects"] == []
