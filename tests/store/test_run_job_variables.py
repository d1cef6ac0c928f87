"""Run-level job variables are held to the pool's schema when the run is created, by the store itself, so the
CLI, the API and the provider refuse the same runs (SPEC §1: `required` enforced for runs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.engine.plan import Action, Change, Plan
from reconciler.errors import NotFoundError, ValidationError
from reconciler.model import BaseJobTemplate, Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

TEMPLATE = BaseJobTemplate(
    job_configuration={"image": "{{ image }}", "env": "{{ env }}"},
    variables={
        "type": "object",
        "properties": {"image": {"type": "string"}, "env": {"type": "object"}},
        "required": ["image"],
    },
)


def _seed(store: SqlStore, deployment_vars: dict[str, Any]) -> None:
    store.create_work_pool(WorkPool(name="p", type="docker", base_job_template=TEMPLATE))
    d = Deployment(flow="f", name="d", entrypoint="a.py:f", work_pool="p", job_variables=deployment_vars)
    store.apply(Plan("t", (Change(d.key, Action.CREATE, None, attributes(d)),)), ApplyRecord("t", "test", {}))


def _run(job_variables: dict[str, Any], pool: str = "p") -> FlowRun:
    return FlowRun(
        id=str(uuid.uuid4()),
        name="r",
        flow="f",
        deployment="f/d",
        work_pool=pool,
        work_queue="default",
        state="SCHEDULED",
        expected_start_time=datetime.now(UTC),
        job_variables=job_variables,
    )


def test_a_required_variable_must_be_set_by_the_deployment_or_the_run(store: SqlStore) -> None:
    _seed(store, {})
    with pytest.raises(ValidationError, match="image") as refused:
        store.create_flow_run(_run({"env": {"A": "1"}}))
    assert refused.value.path[0] == "job_variables"
    assert store.create_flow_run(_run({"image": "flows:1"})).job_variables == {"image": "flows:1"}


def test_the_deployment_s_variables_count_towards_required(store: SqlStore) -> None:
    _seed(store, {"image": "flows:1"})
    assert store.create_flow_run(_run({})).state == "SCHEDULED"


def test_unknown_or_mistyped_run_variables_are_refused(store: SqlStore) -> None:
    _seed(store, {"image": "flows:1"})
    with pytest.raises(ValidationError, match="cpu"):
        store.create_flow_run(_run({"cpu": 2}))
    with pytest.raises(ValidationError, match="image"):
        store.create_flow_run(_run({"image": 3}))
    assert store.list_flow_runs() == []


def test_a_run_for_a_pool_that_does_not_exist_is_refused(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="work pool 'nope'"):
        store.create_flow_run(_run({}, pool="nope"))
