"""diff.make_plan / detect_drift / check_stale: what a user sees in `wp plan` for each situation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.engine.diff import check_stale, detect_drift, make_plan
from reconciler.engine.plan import Action, Plan, Reason
from reconciler.engine.render import render_json, render_text
from reconciler.errors import PlanError
from reconciler.model import (
    BaseJobTemplate,
    Deployment,
    DesiredState,
    Lifecycle,
    ManagedObject,
    Schedule,
    WorkPool,
    WorkQueue,
    attributes,
    fingerprint,
    key_of,
    pool_key,
    queue_key,
)
from reconciler.store.base import DeletedObject, LiveObject, Snapshot

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
P = "proj"
TEMPLATE = BaseJobTemplate(job_configuration={"command": "{{ command }}", "env": {"A": "1"}})
POOL = WorkPool(name="pool", base_job_template=TEMPLATE)
DEP = Deployment(flow="f", name="d", entrypoint="f.py:f", work_pool="pool")
SCHED = Schedule(slug="s", cron="0 * * * *")


def live(
    obj: ManagedObject,
    owner: str | None = P,
    deployment: Deployment | None = None,
    applied: Mapping[str, Any] | None = None,
) -> LiveObject:
    attrs = attributes(obj)
    return LiveObject(key_of(obj, deployment), obj, owner, fingerprint(attrs, owner), applied)


def snap(*objs: LiveObject, default_pool: str | None = None) -> Snapshot:
    return Snapshot({o.key: o for o in objs}, default_pool)


def want(**kw: Any) -> DesiredState:
    return DesiredState(project=P, **kw)


def plan(desired: DesiredState, snapshot: Snapshot, **kw: Any) -> Plan:
    return make_plan(desired, snapshot, now=NOW, **kw)


def actions(p: Plan) -> dict[str, Action]:
    return {c.address: c.action for c in p.changes}


def q(name: str, priority: int | None = 1, **kw: Any) -> WorkQueue:
    return WorkQueue(work_pool="pool", name=name, priority=priority, **kw)


def test_everything_is_created_in_an_empty_store() -> None:
    p = plan(
        want(pools=(POOL,), queues=(q("a"),), deployments=(DEP.model_copy(update={"schedules": (SCHED,)}),)),
        snap(),
    )
    assert actions(p) == {
        "work_pool.pool": Action.CREATE,
        "work_queue.pool/a": Action.CREATE,
        "deployment.f/d": Action.CREATE,
        "schedule.f/d#s": Action.CREATE,
    }
    assert p.changes[0].address == "work_pool.pool"  # parents first
    assert (p.summary.add, p.summary.change, p.summary.destroy) == (4, 0, 0)
    assert "schedules" not in (p.changes[2].after or {})


def test_template_key_order_and_implied_default_queue_are_no_change() -> None:
    reordered = BaseJobTemplate(job_configuration={"env": {"A": "1"}, "command": "{{ command }}"})
    desired = want(pools=(POOL.model_copy(update={"base_job_template": reordered}),), deployments=(DEP,))
    p = plan(desired, snap(live(POOL), live(DEP.model_copy(update={"work_queue": "default"}))))
    assert not p.has_changes
    assert set(actions(p).values()) == {Action.NOOP}


def test_nested_change_is_reported_by_dotted_path() -> None:
    changed = DEP.model_copy(update={"job_variables": {"env": {"X": "2", "Y": "y"}}})
    p = plan(
        want(pools=(POOL,), deployments=(changed,)),
        snap(live(POOL), live(DEP.model_copy(update={"job_variables": {"env": {"X": "1"}}}))),
    )
    (change,) = p.actionable
    assert change.action is Action.UPDATE and change.reason is Reason.CONFIG_CHANGED
    assert [(a.path, a.before, a.after) for a in change.attributes] == [
        ("job_variables.env.X", "1", "2"),
        ("job_variables.env.Y", None, "y"),
    ]


def test_ignore_changes_keeps_the_live_value() -> None:
    desired = want(pools=(POOL,), lifecycle={"work_pool.pool": Lifecycle(ignore_changes=("paused",))})
    p = plan(desired, snap(live(POOL.model_copy(update={"paused": True}))))
    assert not p.has_changes
    assert p.changes[0].after is not None and p.changes[0].after["paused"] is True


def test_pool_type_change_forces_replacement() -> None:
    p = plan(want(pools=(POOL.model_copy(update={"type": "docker"}),)), snap(live(POOL)))
    (change,) = p.actionable
    assert change.action is Action.REPLACE and change.reason is Reason.CANNOT_UPDATE
    assert [(a.path, a.forces_replacement) for a in change.attributes] == [("type", True)]
    assert (p.summary.add, p.summary.destroy) == (1, 1)


def test_undeclared_default_queue_is_never_touched_but_a_declared_one_is_diffed() -> None:
    live_default = live(q("default", priority=7, concurrency_limit=2))
    kept = plan(want(pools=(POOL,), prune=True), snap(live(POOL), live_default))
    assert not kept.has_changes and "work_queue.pool/default" not in actions(kept)
    declared = plan(want(pools=(POOL,), queues=(q("default", priority=1),)), snap(live(POOL), live_default))
    (change,) = declared.actionable
    assert {a.path for a in change.attributes} == {"priority", "concurrency_limit"}


def test_queue_without_priority_keeps_the_live_one() -> None:
    p = plan(want(pools=(POOL,), queues=(q("a", priority=None),)), snap(live(POOL), live(q("a", priority=4))))
    assert not p.has_changes


def test_object_made_by_hand_is_adopted_even_when_equal() -> None:
    p = plan(want(pools=(POOL,)), snap(live(POOL, owner=None)))
    (change,) = p.actionable
    assert (change.action, change.reason, change.attributes) == (Action.UPDATE, Reason.ADOPT, ())


def test_object_of_another_project_is_refused_naming_the_owner() -> None:
    with pytest.raises(PlanError, match="managed by project 'other'"):
        plan(want(pools=(POOL,)), snap(live(POOL, owner="other")))


def test_undeclared_objects_are_kept_with_a_warning_unless_prune() -> None:
    live_objs = [live(POOL), live(q("a")), live(q("b", 2)), live(q("c", 3)), live(q("d", 4))]
    desired = want(pools=(POOL,), queues=(q("a"), q("b", 2), q("c", 3)))
    kept = plan(desired, snap(*live_objs))
    assert not kept.has_changes
    assert kept.warnings == (
        "work_queue.pool/d is not declared; kept because prune is off (use --prune to delete it)",
    )
    pruned = plan(desired, snap(*live_objs), prune=True)
    assert actions(pruned)["work_queue.pool/d"] is Action.DELETE
    assert pruned.actionable[0].reason is Reason.NOT_DECLARED
    off = plan(desired.model_copy(update={"prune": True}), snap(*live_objs), prune=False)
    assert not off.has_changes  # the --prune argument overrides the config


def test_prune_never_deletes_objects_made_by_hand_or_by_another_project() -> None:
    objs = [live(POOL), live(q("mine")), live(q("hand", 2), owner=None), live(q("theirs", 3), owner="other")]
    p = plan(want(pools=(POOL,)), snap(*objs), prune=True, allow_mass_delete=True)
    assert [c.address for c in p.actionable] == ["work_queue.pool/mine"]


def test_deleting_a_pool_takes_its_queues_and_a_deployment_its_schedules() -> None:
    other = WorkPool(name="other", base_job_template=TEMPLATE)
    objs = [
        live(POOL),
        live(other),
        live(q("default")),
        live(q("hand", 2), owner=None),
        live(DEP.model_copy(update={"work_pool": "other"})),
        live(SCHED, deployment=DEP),
    ]
    p = plan(want(pools=(POOL,)), snap(*objs), prune=True, allow_mass_delete=True)
    assert {a for a, act in actions(p).items() if act is Action.DELETE} == {
        "work_pool.other",
        "deployment.f/d",
        "schedule.f/d#s",
    }
    gone = plan(want(pools=(other,)), snap(*objs), prune=True, allow_mass_delete=True)
    deleted = [c.address for c in gone.actionable if "pool" in c.address]
    # children before their pool (a queue made by hand cannot outlive it either)
    assert deleted == ["work_queue.pool/default", "work_queue.pool/hand", "work_pool.pool"]


def test_pool_still_used_by_a_kept_deployment_cannot_be_deleted() -> None:
    objs = [live(POOL), live(DEP, owner="other")]
    with pytest.raises(PlanError, match=r"work_pool.pool cannot be deleted: deployment.f/d still uses it;"):
        plan(want(), snap(*objs), prune=True, allow_mass_delete=True)


def test_a_plan_that_moves_a_deployment_away_may_prune_its_old_pool() -> None:
    """The check looks at the state after the plan: the deployment the plan moves no longer uses the pool."""
    other = WorkPool(name="other", base_job_template=TEMPLATE)
    moved = DEP.model_copy(update={"work_pool": "other"})
    objs = [live(POOL), live(q("default")), live(other), live(DEP)]
    p = plan(want(pools=(other,), deployments=(moved,)), snap(*objs), prune=True, allow_mass_delete=True)
    assert actions(p)["work_pool.pool"] is Action.DELETE
    assert actions(p)["deployment.f/d"] is Action.UPDATE
    # and a deployment the plan moves ONTO a pool it prunes still blocks it
    with pytest.raises(PlanError, match=r"work_pool.other cannot be deleted: deployment.f/d still uses it"):
        plan(want(pools=(POOL,), deployments=(moved,)), snap(*objs), prune=True, allow_mass_delete=True)


def test_protect_refuses_delete_and_replace() -> None:
    protected = {"work_pool.pool": Lifecycle(protect=True)}
    with pytest.raises(PlanError, match=r"work_pool\.pool has `protect: true` and would be deleted"):
        plan(want(pools=(POOL,), lifecycle=protected), snap(live(POOL)), destroy=True)
    with pytest.raises(PlanError, match="would be replaced"):
        plan(want(pools=(POOL.model_copy(update={"type": "docker"}),), lifecycle=protected), snap(live(POOL)))


def test_destroy_deletes_everything_the_project_manages_and_nothing_else() -> None:
    objs = [
        live(POOL),
        live(q("default")),
        live(q("hand", 2), owner=None),
        live(WorkPool(name="x"), owner="o"),
    ]
    p = plan(want(pools=(POOL,)), snap(*objs), destroy=True)
    assert {c.address: c.reason for c in p.actionable} == {
        "work_pool.pool": Reason.DESTROY,
        "work_queue.pool/default": Reason.DESTROY,
        "work_queue.pool/hand": Reason.DESTROY,  # a queue cannot outlive its pool
    }


def test_mass_delete_needs_permission() -> None:
    pools = [WorkPool(name=n, base_job_template=TEMPLATE) for n in "abc"]
    with pytest.raises(PlanError, match=r"delete 2 of the 3 objects.*--allow-mass-delete"):
        plan(want(pools=(pools[0],)), snap(*map(live, pools)), prune=True)
    allowed = plan(want(pools=(pools[0],)), snap(*map(live, pools)), prune=True, allow_mass_delete=True)
    assert allowed.summary.destroy == 2


def test_deployment_without_pool_uses_the_store_default() -> None:
    no_pool = DEP.model_copy(update={"work_pool": None})
    p = plan(want(deployments=(no_pool,)), snap(live(POOL), default_pool="pool"))
    assert p.changes[-1].after is not None and p.changes[-1].after["work_pool"] == "pool"
    with pytest.raises(PlanError, match=r"deployment.f/d names no work pool.*--set-as-default"):
        plan(want(deployments=(no_pool,)), snap(live(POOL)))


def test_targets_restrict_the_plan_and_pull_in_parents_being_created() -> None:
    desired = want(pools=(POOL,), queues=(q("a"), q("b", 2)), deployments=(DEP,))
    p = plan(desired, snap(), targets=["work_queue.pool/a"])
    assert [c.address for c in p.changes] == ["work_pool.pool", "work_queue.pool/a"]
    existing = plan(desired, snap(live(POOL)), targets=["work_queue.pool/a"])
    assert [c.address for c in existing.changes] == ["work_queue.pool/a"]
    with pytest.raises(PlanError, match="matches no declared or live object"):
        plan(desired, snap(), targets=["work_pool.nope"])
    with pytest.raises(PlanError, match="unknown kind"):
        plan(desired, snap(), targets=["pool.nope"])


def test_every_live_object_read_is_fingerprinted() -> None:
    objs = [live(POOL), live(q("hand"), owner=None), live(WorkPool(name="x"), owner="o")]
    p = plan(want(pools=(POOL,)), snap(*objs))
    assert p.fingerprints == {o.key.address: o.fingerprint for o in objs}


def test_drift_lists_what_changed_outside_wp_except_ignored_fields() -> None:
    changed = POOL.model_copy(update={"paused": True, "description": "by hand"})
    s = snap(live(changed, applied=attributes(POOL)))
    (drift,) = detect_drift(s, P)
    assert drift.reason is Reason.CHANGED_OUTSIDE
    assert {(a.path, a.before, a.after) for a in drift.attributes} == {
        ("paused", False, True),
        ("description", None, "by hand"),
    }
    assert detect_drift(s, "someone-else") == ()
    ignoring = want(pools=(POOL,), lifecycle={"work_pool.pool": Lifecycle(ignore_changes=("paused",))})
    (shown,) = plan(ignoring, s).drift
    assert [a.path for a in shown.attributes] == ["description"]


def test_check_stale_names_each_object_that_changed() -> None:
    s = snap(live(POOL), live(q("a")))
    p = plan(
        want(
            pools=(POOL.model_copy(update={"paused": True}),),
            queues=(q("a", concurrency_limit=1), q("new", 2)),
        ),
        s,
    )
    assert check_stale(p, s) == []
    edited = live(POOL.model_copy(update={"description": "x"}))
    later = snap(edited, live(q("new", 2)))
    was = s.objects[edited.key].fingerprint
    assert check_stale(p, later) == [
        f"work_pool.pool changed since the plan was made (fingerprint {was} -> {edited.fingerprint})",
        "work_queue.pool/a was deleted since the plan was made",
        "work_queue.pool/new was created since the plan was made",
    ]


def test_same_input_gives_a_byte_identical_plan() -> None:
    objs = [live(POOL), live(q("b", 2)), live(q("a")), live(DEP)]
    desired = want(pools=(POOL,), queues=(q("a", 3), q("b", 2)), deployments=(DEP,))
    first = render_json(plan(desired, snap(*objs)))
    second = render_json(plan(desired, snap(*reversed(objs))))
    assert first == second


def test_runs_in_flight_note_on_queue_delete() -> None:
    objs = [live(POOL), live(q("a")), live(q("b", 2)), live(q("c", 3))]
    counts = {"work_queue.pool/c": {"RUNNING": 2}}
    p = plan(want(pools=(POOL,), queues=(q("a"), q("b", 2))), snap(*objs), prune=True, runs_in_flight=counts)
    (change,) = p.actionable
    assert [n.kind for n in change.notes] == ["runs_in_flight"]


def test_schedule_change_carries_schedule_notes() -> None:
    dep = DEP.model_copy(update={"schedules": (SCHED.model_copy(update={"cron": "30 * * * *"}),)})
    p = plan(
        want(pools=(POOL,), deployments=(dep,)), snap(live(POOL), live(DEP), live(SCHED, deployment=DEP))
    )
    (change,) = p.actionable
    assert change.address == "schedule.f/d#s" and change.notes
    assert replace(change, notes=()).notes == ()


def test_a_managed_object_deleted_outside_wp_is_drift_and_planned_again() -> None:
    queue = q("hand-deleted")
    gone = {
        queue.key: DeletedObject(queue.key, P, attributes(queue)),
        queue_key("pool", "not-declared"): DeletedObject(queue_key("pool", "not-declared"), P, None),
        queue_key("pool", "theirs"): DeletedObject(queue_key("pool", "theirs"), "other", None),
    }
    s = Snapshot({pool_key("pool"): live(POOL)}, None, gone)
    p = plan(want(pools=(POOL,), queues=(queue, q("theirs", priority=2))), s)
    (drift,) = p.drift  # not the undeclared one (deleting it was no change), not another project's
    assert (drift.address, drift.action, drift.reason) == (
        queue.key.address,
        Action.DELETE,
        Reason.DELETED_OUTSIDE,
    )
    assert drift.before is not None and drift.before["name"] == "hand-deleted" and drift.after is None
    assert {c.address: c.action for c in p.actionable} == {
        "work_queue.pool/hand-deleted": Action.CREATE,
        "work_queue.pool/theirs": Action.CREATE,
    }
    text = render_text(p, color=False)
    assert "# work_queue.pool/hand-deleted was deleted outside wp" in text
    assert "work_queue.pool/theirs was deleted" not in text


def test_a_queue_a_kept_deployment_uses_cannot_be_pruned_unless_the_plan_moves_it() -> None:
    on_low = DEP.model_copy(update={"work_queue": "low"})
    objs = [live(POOL), live(q("default")), live(q("low", 2)), live(on_low)]
    with pytest.raises(
        PlanError, match=r"work_queue.pool/low cannot be deleted: deployment.f/d still uses it"
    ):
        plan(want(pools=(POOL,), deployments=(on_low,)), snap(*objs), prune=True, allow_mass_delete=True)
    p = plan(want(pools=(POOL,), deployments=(DEP,)), snap(*objs), prune=True, allow_mass_delete=True)
    assert actions(p)["work_queue.pool/low"] is Action.DELETE
