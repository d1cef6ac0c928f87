"""read_live: pools of one type share their template in the snapshot without any visible difference."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.diff import make_plan
from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import (
    Deployment,
    DesiredState,
    Kind,
    Schedule,
    WorkPool,
    WorkQueue,
    attributes,
    pool_key,
)
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_pools_with_equal_templates_read_back_equal_with_their_own_fingerprints(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    pools = tuple(
        WorkPool(name=f"p{i}", concurrency_limit=i, base_job_template=default_base_job_template("process"))
        for i in range(5)
    )
    desired = DesiredState(project="proj", pools=pools)
    store.apply(make_plan(desired, store.snapshot(), now=NOW), ApplyRecord("proj", "me", {"add": 5}))
    snap = store.snapshot()
    for pool in pools:
        live = snap.objects[pool_key(pool.name)]
        assert live.value == pool
        assert (
            live.applied is not None
            and live.applied["base_job_template"] == attributes(pool)["base_job_template"]
        )
    # the pools differ only in their limit, which their fingerprints see
    assert len({snap.objects[pool_key(p.name)].fingerprint for p in pools}) == len(pools)
    assert not make_plan(desired, snap, now=NOW).has_changes
    # the objects are shared, so nothing may change them: a plan that edits one pool leaves the others alone
    edited = pools[0].model_copy(update={"description": "changed"})
    plan = make_plan(desired.model_copy(update={"pools": (edited, *pools[1:])}), snap, now=NOW)
    assert [c.address for c in plan.actionable] == ["work_pool.p0"]
    store.apply(plan, ApplyRecord("proj", "me", {"change": 1}))
    again = store.snapshot()
    assert again.objects[pool_key("p1")].value == pools[1]
    assert again.objects[pool_key("p0")].value.description == "changed"  # type: ignore[union-attr]


def test_the_snapshot_carries_each_objects_attributes(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    dep = Deployment(
        flow="f",
        name="d",
        entrypoint="f.py:f",
        work_pool="p",
        job_variables={"env": {"B": "2", "A": "1"}},
        schedules=(Schedule(slug="s", cron="0 * * * *"),),
    )
    desired = DesiredState(
        project="proj",
        pools=(WorkPool(name="p"),),
        queues=(WorkQueue(work_pool="p", name="q"),),
        deployments=(dep,),
    )
    store.apply(make_plan(desired, store.snapshot(), now=NOW), ApplyRecord("proj", "me", {"add": 5}))
    snap = store.snapshot()
    assert len(snap.objects) == 5  # pool, its default queue, q, the deployment, its schedule
    for key, live in snap.objects.items():
        if key.kind is Kind.WORK_POOL:
            assert live.attrs is None  # pools share their template; diff dumps their few models itself
            continue
        assert live.attrs == attributes(live.value)
    assert not make_plan(desired, snap, now=NOW).has_changes
