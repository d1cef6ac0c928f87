"""Referential integrity as every store enforces it: no deployment or waiting run is ever left pointing at a pool
or queue that does not exist, and protected objects are never deleted by hand, whichever client asks."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from test_store_contract import (
    PROJECT,
    change,
    deployment,
    dump,
    plan_for,
    pool,
    queue,
    record,
    seed,
)

from reconciler.engine.plan import Action
from reconciler.errors import ConflictError, ValidationError
from reconciler.model import (
    Deployment,
    FlowRun,
    WorkPool,
    deployment_key,
    pool_key,
    queue_key,
)
from reconciler.store.sql import SqlStore

SOON = datetime.now(UTC) + timedelta(hours=1)


def add_run(
    store: SqlStore, state: str = "SCHEDULED", queue_name: str = "default", dep: str = "etl/nightly"
) -> str:
    run_id = str(uuid.uuid4())
    store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"run-{run_id[:6]}",
            flow=dep.split("/")[0],
            deployment=dep,
            work_pool="prod",
            work_queue=queue_name,
            state=state,
            expected_start_time=SOON,
        )
    )
    return run_id


def run_ids(store: SqlStore) -> set[str]:
    return {r.id for r in store.list_flow_runs(limit=1000)}


# ---------------------------------------------------------------------------------------------- pools


def test_a_pool_that_deployments_use_is_not_deleted_and_the_refusal_names_them(store: SqlStore) -> None:
    seed(store)
    add_run(store)
    before = dump(store)
    with pytest.raises(ConflictError, match=r"deployment\.etl/nightly") as refused:
        store.delete_work_pool("prod")
    assert "cascade" in refused.value.message
    assert dump(store) == before


def test_cascade_deletes_the_pool_its_deployments_and_their_waiting_runs(store: SqlStore) -> None:
    seed(store)
    waiting = add_run(store)
    late = add_run(store, state="LATE")
    done = add_run(store, state="COMPLETED")
    store.delete_work_pool("prod", cascade=True)
    assert store.list_work_pools() == []
    assert store.list_deployments() == []
    # waiting runs would point at nothing and never run: gone; finished runs stay as history
    assert run_ids(store) == {done}
    assert waiting not in run_ids(store) and late not in run_ids(store)


def test_a_pool_with_runs_in_flight_is_not_deleted_even_with_cascade(store: SqlStore) -> None:
    seed(store)
    add_run(store, state="PENDING")
    with pytest.raises(ConflictError, match=r"in flight.*cancel"):
        store.delete_work_pool("prod", cascade=True)
    assert [p.name for p in store.list_work_pools()] == ["prod"]


def test_a_protected_pool_is_not_deleted_and_the_refusal_names_the_project(store: SqlStore) -> None:
    seed(store)
    plan = plan_for(store, change(pool_key("prod"), Action.UPDATE, pool(concurrency_limit=10)))
    store.apply(replace(plan, protected=("work_pool.prod",)), record())
    with pytest.raises(ConflictError, match=rf"protect.*{PROJECT}.*protect: false"):
        store.delete_work_pool("prod", cascade=True)
    assert [p.name for p in store.list_work_pools()] == ["prod"]


def test_a_pool_nothing_uses_is_deleted_with_its_waiting_runs(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="prod"))
    waiting = add_run(store, dep="gone/away")
    store.delete_work_pool("prod")
    assert store.list_work_pools() == []
    assert waiting not in run_ids(store)


# ---------------------------------------------------------------------------------------------- queues


def test_a_queue_that_deployments_use_is_not_deleted_unless_cascade(store: SqlStore) -> None:
    seed(store)
    store.update_deployment("etl", "nightly", work_queue="low")
    waiting = add_run(store, queue_name="low")
    with pytest.raises(ConflictError, match=r"work_queue\.prod/low.*deployment\.etl/nightly"):
        store.delete_work_queue("prod", "low")
    assert store.get_work_queue("prod", "low").name == "low"
    store.delete_work_queue("prod", "low", cascade=True)
    assert store.list_deployments() == []
    assert waiting not in run_ids(store)
    assert [q.name for q in store.list_work_queues("prod")] == ["critical", "default"]


def test_a_protected_queue_is_not_deleted(store: SqlStore) -> None:
    seed(store)
    plan = plan_for(store, change(queue_key("prod", "low"), Action.UPDATE, queue("low", 2)))
    store.apply(replace(plan, protected=("work_queue.prod/low",)), record())
    with pytest.raises(ConflictError, match=r"work_queue\.prod/low.*protect"):
        store.delete_work_queue("prod", "low")


# ---------------------------------------------------------------------------------------------- deployments


def test_a_protected_deployment_is_not_deleted(store: SqlStore) -> None:
    seed(store)
    plan = plan_for(store, change(deployment_key("etl", "nightly"), Action.UPDATE, deployment(tags=("etl",))))
    store.apply(replace(plan, protected=("deployment.etl/nightly",)), record())
    with pytest.raises(ConflictError, match=r"deployment\.etl/nightly.*protect"):
        store.delete_deployment("etl", "nightly")
    assert [d.name for d in store.list_deployments()] == ["nightly"]


def test_deleting_a_deployment_takes_its_waiting_runs_and_refuses_while_one_runs(store: SqlStore) -> None:
    seed(store)
    waiting = add_run(store)
    running = add_run(store, state="RUNNING")
    with pytest.raises(ConflictError, match=rf"in flight.*run-{running[:6]}"):
        store.delete_deployment("etl", "nightly")
    store.set_run_state(running, "COMPLETED", now=datetime.now(UTC))
    store.delete_deployment("etl", "nightly")
    assert run_ids(store) == {running}
    assert waiting not in run_ids(store)


def test_a_deployment_cannot_be_moved_to_a_pool_or_queue_that_does_not_exist(store: SqlStore) -> None:
    seed(store)
    with pytest.raises(ValidationError, match=r"work pool 'nowhere' does not exist"):
        store.update_deployment("etl", "nightly", work_pool="nowhere")
    with pytest.raises(ValidationError, match=r"work queue 'nowhere' does not exist in work pool 'prod'"):
        store.update_deployment("etl", "nightly", work_queue="nowhere")
    assert store.get_deployment("etl", "nightly").work_pool == "prod"


def test_a_run_cannot_name_a_queue_that_does_not_exist(store: SqlStore) -> None:
    seed(store)
    with pytest.raises(ValidationError, match=r"work queue 'nowhere'"):
        add_run(store, queue_name="nowhere")


# ---------------------------------------------------------------------------------------------- plans


def test_a_plan_cannot_create_a_deployment_in_a_pool_that_does_not_exist(store: SqlStore) -> None:
    seed(store)
    before = dump(store)
    stray = Deployment(flow="etl", name="stray", entrypoint="flows/etl.py:etl", work_pool="nowhere")
    from reconciler.model import attributes

    plan = plan_for(store, change(deployment_key("etl", "stray"), Action.CREATE, attributes(stray)))
    with pytest.raises(ValidationError, match=r"deployment\.etl/stray.*work pool 'nowhere' does not exist"):
        store.apply(plan, record())
    assert dump(store) == before


def test_a_plan_cannot_delete_a_pool_or_queue_a_kept_deployment_uses(store: SqlStore) -> None:
    seed(store)
    before = dump(store)
    with pytest.raises(ConflictError, match=r"work_pool\.prod.*deployment\.etl/nightly"):
        store.apply(plan_for(store, change(pool_key("prod"), Action.DELETE)), record())
    store.update_deployment("etl", "nightly", work_queue="low")
    before = dump(store)
    with pytest.raises(ConflictError, match=r"work_queue\.prod/low.*deployment\.etl/nightly"):
        store.apply(plan_for(store, change(queue_key("prod", "low"), Action.DELETE)), record())
    assert dump(store) == before


def test_a_plan_may_move_a_deployment_away_and_delete_its_old_pool(store: SqlStore) -> None:
    seed(store)
    store.create_work_pool(WorkPool(name="other"))
    moved = deployment(tags=("etl",)) | {"work_pool": "other"}
    plan = plan_for(
        store,
        change(pool_key("prod"), Action.DELETE),
        change(deployment_key("etl", "nightly"), Action.UPDATE, moved),
    )
    store.apply(plan, record())
    assert [p.name for p in store.list_work_pools()] == ["other"]
    assert store.get_deployment("etl", "nightly").work_pool == "other"
