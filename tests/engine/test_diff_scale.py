"""The diff's cheap comparisons (copy instead of a JSON round trip, equal-means-no-change, live attributes
normalized once) give the same plan a user saw before, key order included."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.engine.compare import json_round_trip, normalized
from reconciler.engine.diff import make_plan
from reconciler.engine.render import render_json
from reconciler.model import (
    BaseJobTemplate,
    Deployment,
    DesiredState,
    Kind,
    Lifecycle,
    Schedule,
    WorkPool,
    attributes,
    canonical_json,
    fingerprint,
    key_of,
)
from reconciler.store.base import LiveObject, Snapshot

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1, 2.5, None, True, "x"], "c": {"z": {}, "y": []}},
        {"t": (1, (2, 3)), "f": -0.0, "big": 10**30},
        {"odd": {1: "int key"}, "inf": float("inf")},  # not plain JSON: the real round trip is used
        {"enum": Kind.WORK_POOL, "set": {"k": "v"}},
    ],
)
def test_json_round_trip_equals_the_canonical_round_trip_key_order_included(value: dict[str, Any]) -> None:
    want = json.loads(canonical_json(value))
    got = json_round_trip(value)
    assert got == want
    assert json.dumps(got) == json.dumps(want)  # same key order: plan files stay byte-identical


def test_normalized_never_shares_containers_with_its_input() -> None:
    attrs = {"job_variables": {"env": {"A": "1"}}, "tags": ["x"], "status": "READY"}
    out = normalized(Kind.DEPLOYMENT, attrs)
    out["job_variables"]["env"]["A"] = "changed"
    out["tags"].append("y")
    assert attrs == {"job_variables": {"env": {"A": "1"}}, "tags": ["x"], "status": "READY"}
    assert "status" not in out and out["work_queue"] == "default"


def _live(obj: Any, owner: str | None = "p", applied: dict[str, Any] | None = None) -> LiveObject:
    attrs = attributes(obj)
    return LiveObject(
        key_of(obj), obj, owner, fingerprint(attrs, owner), attrs if applied is None else applied
    )


def test_a_large_noop_plan_has_no_changes_and_a_changed_field_is_found() -> None:
    template = BaseJobTemplate(variables={"type": "object", "properties": {"x": {"type": "string"}}})
    pools = [WorkPool(name=f"p{i}", base_job_template=template) for i in range(50)]
    deps = [
        Deployment(flow="f", name=f"d{i}", entrypoint="f.py:f", work_pool=f"p{i % 50}", work_queue="default")
        for i in range(500)
    ]
    desired = DesiredState(project="p", pools=tuple(pools), deployments=tuple(deps))
    objects: list[WorkPool | Deployment] = [*pools, *deps]
    snapshot = Snapshot({key_of(o): _live(o) for o in objects})
    assert not make_plan(desired, snapshot, now=NOW).has_changes
    edited = deps[7].model_copy(update={"description": "changed"})
    desired2 = desired.model_copy(update={"deployments": (*deps[:7], edited, *deps[8:])})
    plan = make_plan(desired2, snapshot, now=NOW)
    assert [(c.address, [a.path for a in c.attributes]) for c in plan.actionable] == [
        ("deployment.f/d7", ["description"])
    ]
    # what the user reads is the same whichever way the attributes were compared
    [shown] = [
        c for c in json.loads(render_json(plan))["resource_changes"] if c["address"] == "deployment.f/d7"
    ]
    assert (shown["before"]["description"], shown["after"]["description"]) == (None, "changed")


def test_ignore_changes_and_drift_still_use_the_live_values() -> None:
    pool = WorkPool(name="p", concurrency_limit=5)
    live_pool = pool.model_copy(update={"concurrency_limit": 9})
    applied = attributes(pool)
    desired = DesiredState(
        project="p",
        pools=(pool,),
        lifecycle={"work_pool.p": Lifecycle(ignore_changes=("concurrency_limit",))},
    )
    plan = make_plan(desired, Snapshot({key_of(pool): _live(live_pool, applied=applied)}), now=NOW)
    assert not plan.actionable
    assert plan.drift == ()  # ignored fields are not drift either
    plain = DesiredState(project="p", pools=(pool,))
    plan = make_plan(plain, Snapshot({key_of(pool): _live(live_pool, applied=applied)}), now=NOW)
    assert [a.path for a in plan.actionable[0].attributes] == ["concurrency_limit"]
    assert [a.path for a in plan.drift[0].attributes] == ["concurrency_limit"]


def _carried(live: LiveObject) -> LiveObject:
    """The LiveObject as SqlStore.snapshot() gives it: attributes carried in key order (pools' not)."""
    if isinstance(live.value, WorkPool):
        return live
    attrs = attributes(live.value)
    return replace(live, attrs={name: attrs[name] for name in sorted(attrs)})


def test_attributes_carried_by_the_store_give_the_plan_a_model_dump_gives() -> None:
    pool = WorkPool(name="p")
    kept = Deployment(
        flow="f",
        name="kept",
        entrypoint="f.py:f",
        work_pool="p",
        job_variables={"z": 1, "a": {"y": [1.5, {"k": None}], "b": True}},  # nested keys out of order
        schedules=(Schedule(slug="s", interval=3600.0),),
    )
    by_hand = Deployment(flow="f", name="hand", entrypoint="f.py:f", work_pool="p")  # no queue: `default`
    edited = kept.model_copy(update={"parameters": {"n": 1}})
    gone = Deployment(flow="f", name="gone", entrypoint="f.py:f", work_pool="p", tags=("t",))
    drifted = by_hand.model_copy(update={"description": "changed by hand"})
    objects: list[Any] = [pool, kept, gone, drifted, *kept.schedules]
    owners = {"deployment.f/hand": None}
    lives = []
    for obj in objects:
        key = key_of(obj, kept if isinstance(obj, Schedule) else None)
        owner = owners.get(key.address, "p")
        applied = attributes(by_hand) if obj is drifted else None
        attrs = attributes(obj)
        lives.append(LiveObject(key, obj, owner, fingerprint(attrs, owner), applied or attrs))
    desired = DesiredState(project="p", pools=(pool,), deployments=(edited, by_hand), prune=True)
    plain = make_plan(desired, Snapshot({lo.key: lo for lo in lives}), now=NOW)
    carried_snapshot = Snapshot({lo.key: _carried(lo) for lo in lives})
    carried = make_plan(desired, carried_snapshot, now=NOW)
    assert render_json(carried) == render_json(plain)  # byte for byte, key order included
    assert {c.address: c.action.value for c in carried.actionable} == {
        "deployment.f/gone": "delete",
        "deployment.f/hand": "update",  # adopted, description back to the declared one
        "deployment.f/kept": "update",
    }
    # the carried values are the snapshot's own: planning left them as they were
    assert all(_carried(lo).attrs == carried_snapshot.objects[lo.key].attrs for lo in lives)
