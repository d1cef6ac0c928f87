"""The Store protocol (declared objects, lock, history) as every SQL backend must honour it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from reconciler.engine.plan import Action, Change, Plan, Reason, order_changes
from reconciler.errors import (
    ConflictError,
    LockHeldError,
    NotFoundError,
    StalePlanError,
    ValidationError,
)
from reconciler.model import (
    BaseJobTemplate,
    Deployment,
    Key,
    Schedule,
    WorkPool,
    WorkQueue,
    attributes,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)
from reconciler.store import objects, tables
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

PROJECT = "data-platform"
TEMPLATE = BaseJobTemplate(
    job_configuration={"command": "{{ command }}"},
    variables={"type": "object", "properties": {"command": {"type": "string"}}},
)


def pool(name: str = "prod", **kw: Any) -> dict[str, Any]:
    return attributes(WorkPool(name=name, base_job_template=TEMPLATE, **kw))


def queue(name: str, priority: int | None, pool_name: str = "prod", **kw: Any) -> dict[str, Any]:
    return attributes(WorkQueue(work_pool=pool_name, name=name, priority=priority, **kw))


def deployment(name: str = "nightly", **kw: Any) -> dict[str, Any]:
    return attributes(
        Deployment(flow="etl", name=name, entrypoint="flows/etl.py:etl", work_pool="prod", **kw)
    )


def schedule(slug: str = "nightly", cron: str = "0 2 * * *") -> dict[str, Any]:
    return attributes(Schedule(slug=slug, cron=cron, timezone="Europe/Berlin"))


def change(key: Key, action: Action, after: Mapping[str, Any] | None = None) -> Change:
    return Change(key, action, None, after, Reason.CONFIG_CHANGED)


def plan_for(store: SqlStore, *changes: Change, project: str = PROJECT) -> Plan:
    """A plan made against the store as it is now (fingerprints of every live object)."""
    fps = {k.address: o.fingerprint for k, o in store.snapshot().objects.items()}
    return Plan(project, order_changes(changes), fingerprints=fps)


def record(**kw: Any) -> ApplyRecord:
    return ApplyRecord(
        project=kw.pop("project", PROJECT), actor="ci", summary={"add": 1, "change": 0, "destroy": 0}, **kw
    )


def dump(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: equal dumps mean an unchanged store."""
    with store.engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in tables.ALL_TABLES
        }


def seed(store: SqlStore) -> None:
    """prod (critical 1, low 2, default 3) + etl/nightly with one schedule."""
    store.apply(
        plan_for(
            store,
            change(pool_key("prod"), Action.CREATE, pool(concurrency_limit=10)),
            change(queue_key("prod", "critical"), Action.CREATE, queue("critical", 1, concurrency_limit=1)),
            change(queue_key("prod", "low"), Action.CREATE, queue("low", 2)),
            change(deployment_key("etl", "nightly"), Action.CREATE, deployment(tags=("etl",))),
            change(schedule_key("etl", "nightly", "nightly"), Action.CREATE, schedule()),
        ),
        record(),
    )


# ------------------------------------------------------------------------------------- snapshot, apply


def test_apply_from_empty_creates_everything_owned_by_the_project(store: SqlStore) -> None:
    seed(store)
    snap = store.snapshot()
    assert set(snap.objects) == {
        pool_key("prod"),
        queue_key("prod", "critical"),
        queue_key("prod", "low"),
        queue_key("prod", "default"),
        deployment_key("etl", "nightly"),
        schedule_key("etl", "nightly", "nightly"),
    }
    assert {o.owner for o in snap.objects.values()} == {PROJECT}
    live_pool = snap.objects[pool_key("prod")]
    assert live_pool.value == WorkPool(name="prod", base_job_template=TEMPLATE, concurrency_limit=10)
    assert live_pool.applied == pool(concurrency_limit=10)
    assert live_pool.status == "NOT_READY"
    # the undeclared default queue moved out of the way of the declared priorities
    assert snap.objects[queue_key("prod", "default")].value.priority == 3  # type: ignore[union-attr]
    assert snap.objects[queue_key("prod", "critical")].status == "NOT_READY"
    dep = snap.objects[deployment_key("etl", "nightly")].value
    assert isinstance(dep, Deployment) and dep.tags == ("etl",)
    assert [s.slug for s in dep.schedules] == ["nightly"]
    assert store.get_deployment("etl", "nightly").schedules[0].timezone == "Europe/Berlin"


def test_update_rewrites_attributes_and_applied(store: SqlStore) -> None:
    seed(store)
    store.apply(
        plan_for(
            store,
            change(pool_key("prod"), Action.UPDATE, pool(concurrency_limit=20, description="Production")),
            change(schedule_key("etl", "nightly", "nightly"), Action.UPDATE, schedule(cron="0 3 * * *")),
        ),
        record(),
    )
    snap = store.snapshot()
    assert store.get_work_pool("prod").concurrency_limit == 20
    assert snap.objects[pool_key("prod")].applied == pool(concurrency_limit=20, description="Production")
    assert store.get_deployment("etl", "nightly").schedules[0].cron == "0 3 * * *"


def test_delete_pool_cascades_to_its_queues(store: SqlStore) -> None:
    seed(store)
    store.apply(
        plan_for(
            store,
            change(schedule_key("etl", "nightly", "nightly"), Action.DELETE),
            change(deployment_key("etl", "nightly"), Action.DELETE),
            change(queue_key("prod", "critical"), Action.DELETE),
            change(queue_key("prod", "low"), Action.DELETE),
            change(pool_key("prod"), Action.DELETE),
        ),
        record(),
    )
    assert store.snapshot().objects == {}


def test_replace_pool_keeps_its_queues(store: SqlStore) -> None:
    seed(store)
    store.apply(plan_for(store, change(pool_key("prod"), Action.REPLACE, pool(type="docker"))), record())
    assert store.get_work_pool("prod").type == "docker"
    assert [q.name for q in store.list_work_queues("prod")] == ["critical", "low", "default"]


def test_plan_deleting_default_queue_of_a_kept_pool_is_refused(store: SqlStore) -> None:
    seed(store)
    before = dump(store)
    with pytest.raises(ValidationError, match=r"work_queue\.prod/default.*cannot be deleted"):
        store.apply(plan_for(store, change(queue_key("prod", "default"), Action.DELETE)), record())
    assert dump(store) == before


def test_reordering_declared_priorities_in_one_plan(store: SqlStore) -> None:
    seed(store)
    store.apply(
        plan_for(
            store,
            change(queue_key("prod", "critical"), Action.UPDATE, queue("critical", 2, concurrency_limit=1)),
            change(queue_key("prod", "low"), Action.UPDATE, queue("low", 1)),
        ),
        record(),
    )
    assert [(q.name, q.priority) for q in store.list_work_queues("prod")] == [
        ("low", 1),
        ("critical", 2),
        ("default", 3),
    ]


# ------------------------------------------------------------------------------------------- atomicity


def test_stale_plan_is_refused_naming_the_object_and_changes_nothing(store: SqlStore) -> None:
    seed(store)
    plan = plan_for(store, change(pool_key("prod"), Action.UPDATE, pool(concurrency_limit=5)))
    store.update_work_pool("prod", description="changed by hand")
    before = dump(store)
    with pytest.raises(StalePlanError, match=r"work_pool\.prod \(changed since the plan was made\)"):
        store.apply(plan, record())
    assert dump(store) == before


def test_object_created_since_the_plan_makes_it_stale(store: SqlStore) -> None:
    plan = plan_for(store, change(pool_key("prod"), Action.CREATE, pool()))
    store.create_work_pool(WorkPool(name="prod", base_job_template=TEMPLATE))
    before = dump(store)
    with pytest.raises(StalePlanError, match=r"work_pool\.prod \(created since"):
        store.apply(plan, record())
    assert dump(store) == before


def test_a_stale_plan_of_many_objects_names_the_first_few_and_counts_the_rest(store: SqlStore) -> None:
    names = [f"p{i:02d}" for i in range(40)]
    plan = plan_for(store, *(change(pool_key(n), Action.CREATE, pool(n)) for n in names))
    for n in names:
        store.create_work_pool(WorkPool(name=n, base_job_template=TEMPLATE))
    with pytest.raises(StalePlanError) as caught:
        store.apply(plan, record())
    message = str(caught.value)
    assert "work_pool.p00 (created since the plan was made)" in message
    assert "and 35 more" in message and "work_pool.p39" not in message
    assert len(message) < 600, message


def test_failure_mid_transaction_leaves_store_byte_for_byte(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    before = dump(store)

    def broken(self: objects.PlanWriter, action: Action, changes: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(objects.PlanWriter, "_deployments", broken)
    plan = plan_for(
        store,
        change(pool_key("staging"), Action.CREATE, pool("staging")),
        change(pool_key("prod"), Action.UPDATE, pool(concurrency_limit=1)),
        change(deployment_key("etl", "hourly"), Action.CREATE, deployment("hourly")),
    )
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.apply(plan, record())
    assert dump(store) == before


def test_store_error_mid_transaction_rolls_back(store: SqlStore) -> None:
    seed(store)
    before = dump(store)
    twice = change(deployment_key("etl", "hourly"), Action.CREATE, deployment("hourly"))
    plan = plan_for(store, change(pool_key("staging"), Action.CREATE, pool("staging")), twice)
    plan = Plan(PROJECT, (*plan.changes, twice), fingerprints=plan.fingerprints)
    with pytest.raises(ConflictError):
        store.apply(plan, record())
    assert dump(store) == before


# --------------------------------------------------------------------------------------- lock, history


def test_lock_held_names_the_holder(store: SqlStore) -> None:
    lock = store.acquire_lock("alice@laptop", "apply")
    with pytest.raises(LockHeldError, match=r"alice@laptop \(apply\).*wp force-unlock " + lock.id):
        store.acquire_lock("bob", "apply", timeout=0.2)
    assert store.current_lock() == lock
    with pytest.raises(LockHeldError, match="alice@laptop"):
        store.apply(plan_for(store, change(pool_key("p"), Action.CREATE, pool("p"))), record())
    store.apply(plan_for(store, change(pool_key("p"), Action.CREATE, pool("p"))), record(), lock_id=lock.id)
    store.release_lock(lock.id)
    assert store.current_lock() is None
    assert store.acquire_lock("bob", "apply").holder == "bob"


def test_expired_lease_is_taken_over(store: SqlStore) -> None:
    store.acquire_lock("crashed-ci", "apply", ttl=0.05)
    time.sleep(0.1)
    assert store.current_lock() is None
    assert store.acquire_lock("bob", "apply").holder == "bob"


def test_waiting_for_a_lock_succeeds_when_released(store: SqlStore) -> None:
    alice = store.acquire_lock("alice", "apply", ttl=0.3)
    bob = store.acquire_lock("bob", "apply", timeout=5)
    assert bob.holder == "bob"
    # bob waited for alice's lease to run out: judged on the store's own times, not on how long this test took
    # (alice's acquire returning late on a loaded machine left less than 0.2 s of her lease to wait for)
    assert bob.acquired_at >= alice.expires_at, (alice, bob)


def test_force_unlock(store: SqlStore) -> None:
    lock = store.acquire_lock("alice", "apply")
    with pytest.raises(NotFoundError, match=f"no lock with id 'nope'.*{lock.id}"):
        store.force_unlock("nope")
    assert store.force_unlock(lock.id) == lock
    assert store.current_lock() is None


def test_history_records_git_facts(store: SqlStore) -> None:
    plan = plan_for(store, change(pool_key("p"), Action.CREATE, pool("p")))
    written = store.apply(
        plan, record(git_commit="abc123", git_branch="main", git_dirty=True, addresses=["x"])
    )
    store.apply(plan_for(store), record(project="other"))
    assert written.id is not None and written.time is not None
    history = store.list_history(project=PROJECT)
    assert len(history) == 1
    assert (history[0].git_commit, history[0].git_branch, history[0].git_dirty) == ("abc123", "main", True)
    assert history[0].summary == {"add": 1, "change": 0, "destroy": 0}
    assert history[0].time == written.time
    assert [r.project for r in store.list_history()] == ["other", PROJECT]


# ------------------------------------------------------------------------------------- imperative CRUD


def test_pool_crud_and_errors(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p", base_job_template=TEMPLATE))
    assert [q.name for q in store.list_work_queues("p")] == ["default"]
    with pytest.raises(ConflictError, match="'p' already exists"):
        store.create_work_pool(WorkPool(name="p"))
    store.create_work_pool(WorkPool(name="p", description="over"), overwrite=True)
    assert store.get_work_pool("p").description == "over"
    assert store.update_work_pool("p", paused=True).paused
    assert store.work_pool_status("p", _now()) == "PAUSED"
    with pytest.raises(ValidationError, match=r"cannot update colour; updatable fields: .*concurrency_limit"):
        store.update_work_pool("p", colour="red")
    with pytest.raises(ValidationError, match="concurrency_limit"):
        store.update_work_pool("p", concurrency_limit=-1)
    with pytest.raises(NotFoundError, match="work pool 'nope' does not exist"):
        store.get_work_pool("nope")
    store.set_default_work_pool("p")
    assert store.get_default_work_pool() == "p" and store.snapshot().default_pool == "p"
    store.delete_work_pool("p")
    assert store.list_work_pools() == [] and store.get_default_work_pool() is None
    assert store.snapshot().objects == {}


def test_queue_priorities_shift_down_until_a_gap(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="p"))  # default = 1
    assert store.create_work_queue(WorkQueue(work_pool="p", name="a")).priority == 2
    store.create_work_queue(WorkQueue(work_pool="p", name="b", priority=5))
    assert store.create_work_queue(WorkQueue(work_pool="p", name="c")).priority == 6
    store.create_work_queue(WorkQueue(work_pool="p", name="top", priority=1))
    assert _priorities(store) == {"top": 1, "default": 2, "a": 3, "b": 5, "c": 6}
    store.update_work_queue("p", "c", priority=3)
    assert _priorities(store) == {"top": 1, "default": 2, "c": 3, "a": 4, "b": 5}
    store.delete_work_queue("p", "a")
    assert _priorities(store) == {"top": 1, "default": 2, "c": 3, "b": 5}  # gaps are kept
    with pytest.raises(ConflictError, match="'b' already exists in work pool 'p'"):
        store.create_work_queue(WorkQueue(work_pool="p", name="b"))
    with pytest.raises(ValidationError, match="default queue cannot be deleted"):
        store.delete_work_queue("p", "default")
    with pytest.raises(NotFoundError, match="work queue 'zz' does not exist in work pool 'p'"):
        store.get_work_queue("p", "zz")
    with pytest.raises(NotFoundError, match="work pool 'q' does not exist"):
        store.create_work_queue(WorkQueue(work_pool="q", name="x"))
    assert store.work_queue_status("p", "b", _now()) == "NOT_READY"
    assert store.update_work_queue("p", "b", paused=True).paused
    assert store.work_queue_status("p", "b", _now()) == "PAUSED"


def test_deployment_crud(store: SqlStore) -> None:
    seed(store)
    assert [d.name for d in store.list_deployments(work_pool="prod")] == ["nightly"]
    assert store.list_deployments(work_pool="other") == []
    updated = store.update_deployment("etl", "nightly", paused=True, schedules=())
    assert updated.paused and store.get_deployment("etl", "nightly").schedules == ()
    store.delete_deployment("etl", "nightly")
    with pytest.raises(NotFoundError, match="deployment etl/nightly does not exist"):
        store.get_deployment("etl", "nightly")


def test_fingerprints_follow_attributes_and_owner_only(store: SqlStore) -> None:
    seed(store)
    store.create_work_pool(WorkPool(name="hand"))

    def prints() -> dict[Key, str]:
        return {k: o.fingerprint for k, o in store.snapshot().objects.items()}

    first = prints()
    assert prints() == first  # read twice, the same
    assert len(set(first.values())) == len(first)  # no two objects alike
    # a worker polling the pool's queues changes their status, not their attributes: a plan stays fresh
    store.claim_runs("prod", "w1", limit=1, scheduled_before=_now(), now=_now())
    assert store.snapshot().objects[queue_key("prod", "low")].status == "READY"
    assert prints() == first
    store.update_work_queue("prod", "low", description="by hand")
    store.update_deployment("etl", "nightly", tags=["etl", "hand"])
    moved = {k for k, fp in prints().items() if fp != first[k]}
    assert moved == {queue_key("prod", "low"), deployment_key("etl", "nightly")}
    # adoption changes only the owner, and that alone moves the fingerprint
    hand = store.snapshot().objects[pool_key("hand")]
    store.apply(
        Plan(
            PROJECT,
            (Change(pool_key("hand"), Action.UPDATE, None, attributes(hand.value), Reason.ADOPT),),
            fingerprints={"work_pool.hand": hand.fingerprint},
        ),
        record(),
    )
    adopted = store.snapshot().objects[pool_key("hand")]
    assert adopted.owner == PROJECT and adopted.value == hand.value
    assert adopted.fingerprint != hand.fingerprint


def test_managed_objects_deleted_by_hand_are_remembered_until_made_again(store: SqlStore) -> None:
    seed(store)
    store.create_work_pool(WorkPool(name="hand"))
    assert store.snapshot().deleted == {}
    store.delete_work_queue("prod", "low")
    store.delete_deployment("etl", "nightly")
    store.delete_work_pool("hand")  # made by hand: no project lost it
    deleted = store.snapshot().deleted
    assert set(deleted) == {
        queue_key("prod", "low"),
        deployment_key("etl", "nightly"),
        schedule_key("etl", "nightly", "nightly"),  # with its deployment
    }
    assert {d.owner for d in deleted.values()} == {PROJECT}
    assert deleted[queue_key("prod", "low")].applied == queue("low", 2)
    # a plan that makes them again forgets them; what it does not make stays remembered
    store.apply(
        plan_for(
            store,
            change(queue_key("prod", "low"), Action.CREATE, queue("low", 2)),
            change(deployment_key("etl", "nightly"), Action.CREATE, deployment(tags=("etl",))),
        ),
        record(),
    )
    assert set(store.snapshot().deleted) == {schedule_key("etl", "nightly", "nightly")}
    # a whole pool deleted by hand (with cascade: a deployment uses it) takes its managed queues with it
    store.delete_work_pool("prod", cascade=True)
    assert set(store.snapshot().deleted) >= {
        pool_key("prod"),
        queue_key("prod", "critical"),
        queue_key("prod", "low"),
        queue_key("prod", "default"),
    }
    # made again by hand: not deleted any more (the next plan adopts it)
    store.create_work_pool(WorkPool(name="prod"))
    assert pool_key("prod") not in store.snapshot().deleted


def test_protection_is_part_of_the_snapshot(store: SqlStore) -> None:
    seed(store)
    plan = plan_for(store, change(queue_key("prod", "critical"), Action.UPDATE, queue("critical", 1)))
    store.apply(replace(plan, protected=("work_queue.prod/critical",)), record())
    snap = store.snapshot()
    assert [k for k, o in snap.objects.items() if o.protected] == [queue_key("prod", "critical")]


def test_a_snapshot_of_some_objects_reads_just_those(store: SqlStore) -> None:
    seed(store)
    full = store.snapshot()
    wanted = [
        queue_key("prod", "low"),
        deployment_key("etl", "nightly"),
        pool_key("missing"),
        schedule_key("etl", "nightly", "other"),
    ]
    some = store.snapshot(only=wanted)
    assert set(some.objects) == {queue_key("prod", "low"), deployment_key("etl", "nightly")}
    for key, live in some.objects.items():
        assert live == full.objects[key]  # same value, owner, fingerprint, applied, status
    # a deployment read alone still holds its schedules
    assert [s.slug for s in some.objects[deployment_key("etl", "nightly")].value.schedules] == ["nightly"]  # type: ignore[union-attr]
    only_schedule = store.snapshot(only=[schedule_key("etl", "nightly", "nightly"), pool_key("prod")])
    assert set(only_schedule.objects) == {schedule_key("etl", "nightly", "nightly"), pool_key("prod")}
    assert only_schedule.objects[pool_key("prod")].status == full.objects[pool_key("prod")].status
    assert store.snapshot(only=[]).objects == {}


def test_imperative_objects_have_no_owner(store: SqlStore) -> None:
    store.create_work_pool(WorkPool(name="hand"))
    store.create_work_pool(WorkPool(name="theirs"), owner="other-project")
    snap = store.snapshot()
    assert snap.objects[pool_key("hand")].owner is None
    assert snap.objects[pool_key("hand")].applied is None
    assert snap.objects[pool_key("theirs")].owner == "other-project"


def _priorities(store: SqlStore) -> dict[str, int | None]:
    return {q.name: q.priority for q in store.list_work_queues("p")}


def _now() -> datetime:
    return datetime.now(UTC)


def test_runs_list_newest_first_pages_back_from_a_time(store: SqlStore) -> None:
    from datetime import UTC, datetime, timedelta

    from reconciler.model import FlowRun

    store.create_work_pool(WorkPool(name="paged"))
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(5):
        store.create_flow_run(
            FlowRun(
                id=f"00000000-0000-0000-0000-00000000000{i}",
                name=f"run-{i}",
                flow="f",
                deployment="f/d",
                work_pool="paged",
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=start + timedelta(minutes=i),
            )
        )
    newest = store.list_flow_runs(work_pool="paged", limit=2, newest_first=True)
    assert [r.name for r in newest] == ["run-4", "run-3"]
    older = store.list_flow_runs(
        work_pool="paged",
        limit=2,
        newest_first=True,
        before=newest[-1].expected_start_time - timedelta(seconds=1),
    )
    assert [r.name for r in older] == ["run-2", "run-1"]
    assert [r.name for r in store.list_flow_runs(work_pool="paged", limit=2)] == ["run-0", "run-1"]
