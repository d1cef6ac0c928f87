"""HttpStore over the real app: the answers and exceptions of the SqlStore behind it, in few requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from reconciler.engine.plan import Action, Change, Plan, Reason
from reconciler.errors import (
    AuthError,
    ConflictError,
    LockHeldError,
    NotFoundError,
    StalePlanError,
    StoreError,
    ValidationError,
)
from reconciler.model import (
    Deployment,
    FlowRun,
    Key,
    LogLine,
    ManagedObject,
    Schedule,
    WorkPool,
    WorkQueue,
    attributes,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)
from reconciler.secret_values import unseal
from reconciler.store.base import ApplyRecord, Store
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _create(key: Key, value: ManagedObject) -> Change:
    return Change(key, Action.CREATE, before=None, after=attributes(value), reason=Reason.NOT_IN_STORE)


def _plan(n_pools: int = 1) -> Plan:
    changes = []
    for i in range(n_pools):
        pool = WorkPool(name=f"pool-{i}", concurrency_limit=i + 1)
        changes.append(_create(pool_key(pool.name), pool))
        queue = WorkQueue(work_pool=pool.name, name="high", priority=1)
        changes.append(_create(queue_key(pool.name, "high"), queue))
    schedule = Schedule(slug="hourly", interval=3600)
    deployment = Deployment(
        flow="etl",
        name="nightly",
        entrypoint="flows/etl.py:etl",
        work_pool="pool-0",
        job_variables={"env": {"API_TOKEN": "s3cret", "LOG_LEVEL": "info"}},
        schedules=(schedule,),
    )
    changes.append(_create(deployment_key("etl", "nightly"), deployment))
    changes.append(_create(schedule_key("etl", "nightly", "hourly"), schedule))
    return Plan(project="demo", changes=tuple(changes))


def _record() -> ApplyRecord:
    return ApplyRecord(project="demo", actor="tester", summary={"add": 1, "change": 0, "destroy": 0})


def _count_requests(client: TestClient) -> list[str]:
    seen: list[str] = []

    def hook(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    client.event_hooks = {"request": [hook], "response": []}
    return seen


def test_http_store_is_a_store(http_store: HttpStore) -> None:
    assert isinstance(http_store, Store)


def test_apply_and_snapshot_cost_one_request_each_and_match_sql(
    http_store: HttpStore, sql_store: SqlStore, client: TestClient
) -> None:
    seen = _count_requests(client)
    record = http_store.apply(_plan(n_pools=15), _record())
    assert seen == ["POST /apply"]
    assert record.id is not None and record.time is not None

    seen.clear()
    snapshot = http_store.snapshot()
    assert seen == ["GET /snapshot"]
    assert snapshot.sealed
    clear = sql_store.snapshot()
    # the same objects, but the secret travels sealed; a planner with the clear value gets it back
    sealed_deployment = snapshot.objects[deployment_key("etl", "nightly")]
    clear_deployment = clear.objects[deployment_key("etl", "nightly")]
    env = sealed_deployment.value.job_variables["env"]  # type: ignore[union-attr]
    assert env["API_TOKEN"].startswith("(sensitive sha256:") and env["LOG_LEVEL"] == "info"
    assert unseal(env, {"API_TOKEN": "s3cret"}) == {"API_TOKEN": "s3cret", "LOG_LEVEL": "info"}
    assert unseal(env, {"API_TOKEN": "other"})["API_TOKEN"] == env["API_TOKEN"]
    assert snapshot.objects.keys() == clear.objects.keys()
    for key, live in snapshot.objects.items():
        if key != deployment_key("etl", "nightly"):
            assert live == clear.objects[key]
    assert sealed_deployment.fingerprint == clear_deployment.fingerprint
    assert (
        len(snapshot.objects) >= 15 * 3 + 2
    )  # pools, their declared and default queues, deployment, schedule


def test_secrets_travel_unmasked_and_are_stored_in_clear(http_store: HttpStore, sql_store: SqlStore) -> None:
    http_store.apply(_plan(), _record())
    assert sql_store.get_deployment("etl", "nightly").job_variables["env"]["API_TOKEN"] == "s3cret"


def test_stale_plan_is_refused_with_the_same_exception(http_store: HttpStore) -> None:
    http_store.apply(_plan(), _record())
    with pytest.raises(StalePlanError):
        http_store.apply(_plan(), _record())  # it says "create" for objects that now exist


def test_history_and_lock_round_trip(http_store: HttpStore) -> None:
    http_store.apply(_plan(), _record())
    [entry] = http_store.list_history("demo")
    assert entry.actor == "tester" and entry.project == "demo"

    lock = http_store.acquire_lock("alice", "apply")
    assert http_store.current_lock() == lock
    with pytest.raises(LockHeldError, match="alice"):
        http_store.acquire_lock("bob", "apply")
    assert http_store.force_unlock(lock.id).holder == "alice"
    assert http_store.current_lock() is None
    with pytest.raises(NotFoundError):
        http_store.force_unlock(lock.id)


def test_crud_errors_are_the_store_exceptions(http_store: HttpStore, sql_store: SqlStore) -> None:
    http_store.create_work_pool(WorkPool(name="p", description="d"))
    assert http_store.get_work_pool("p") == sql_store.get_work_pool("p")
    assert http_store.get_work_pool("p").description == "d"
    with pytest.raises(ConflictError):
        http_store.create_work_pool(WorkPool(name="p"))
    with pytest.raises(NotFoundError):
        http_store.get_work_pool("missing")
    with pytest.raises(ValidationError):
        http_store.delete_work_queue("p", "default")
    assert http_store.update_work_pool("p", concurrency_limit=3).concurrency_limit == 3
    assert http_store.update_work_pool("p", concurrency_limit=None).concurrency_limit is None
    queue = http_store.create_work_queue(WorkQueue(work_pool="p", name="q b.c", priority=1))
    assert [q.name for q in http_store.list_work_queues("p")] == ["q b.c", "default"]
    assert http_store.get_work_queue("p", "q b.c") == queue
    assert http_store.work_pool_status("p", NOW) == "NOT_READY"
    http_store.set_default_work_pool("p")
    assert http_store.get_default_work_pool() == "p"
    http_store.delete_work_pool("p")
    assert http_store.list_work_pools() == []


def test_runtime_round_trip(http_store: HttpStore) -> None:
    http_store.apply(_plan(), _record())
    run = FlowRun(
        id=str(uuid.uuid4()),
        name="brave-otter",
        flow="etl",
        deployment="etl/nightly",
        work_pool="pool-0",
        work_queue="high",
        state="SCHEDULED",
        expected_start_time=NOW,
    )
    assert http_store.create_flow_run(run).id == run.id
    worker = http_store.heartbeat_worker("pool-0", "w1", interval=30, now=NOW)
    assert worker.status == "ONLINE"
    [claimed] = http_store.claim_runs(
        "pool-0", "w1", limit=5, scheduled_before=NOW + timedelta(seconds=10), now=NOW
    )
    assert claimed.state == "PENDING" and claimed.worker == "w1"
    running = http_store.set_run_state(run.id, "RUNNING", expected=["PENDING"], now=NOW)
    assert running.state == "RUNNING"
    recorded = http_store.set_run_infrastructure(run.id, "0123abcd")
    assert recorded.infrastructure_id == "0123abcd" and recorded.state == "RUNNING"
    assert http_store.get_flow_run(run.id).infrastructure_id == "0123abcd"
    with pytest.raises(NotFoundError):
        http_store.set_run_infrastructure("no-such-run", "x")
    with pytest.raises(ConflictError):
        http_store.set_run_state(run.id, "COMPLETED", expected=["PENDING"], now=NOW)
    http_store.append_logs([LogLine(run_id=run.id, timestamp=NOW, message=f"line {i}") for i in range(3)])
    logs = http_store.read_logs(run.id)
    assert [line.message for line in logs] == ["line 0", "line 1", "line 2"]
    assert [line.message for line in http_store.read_logs(run.id, after_seq=logs[0].seq)] == [
        "line 1",
        "line 2",
    ]
    assert [r.id for r in http_store.list_flow_runs(states=["RUNNING"], work_pool="pool-0")] == [run.id]
    assert http_store.list_flow_runs(states=["COMPLETED"]) == []
    assert [w.name for w in http_store.list_workers("pool-0", NOW)] == ["w1"]


def test_wrong_key_and_unreachable_server_are_clear(client: TestClient) -> None:
    with pytest.raises(AuthError, match="WP_API_KEY is wrong"):
        HttpStore("http://testserver", api_key="wrong", client=client).list_work_pools()
    with pytest.raises(StoreError, match="WP_API_URL"):
        HttpStore("http://127.0.0.1:9", api_key="k").list_work_pools()
