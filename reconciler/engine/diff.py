"""Diff: compare each declared object with its live counterpart and build the Plan.

Owns the comparison of each pair that engine.pairing forms (in the form engine.compare gives: JSON compared
semantically, server-owned fields dropped, `ignore_changes` honoured; the undeclared `default` queue left alone),
the safety rules (ownership, prune, protect, mass delete), `--target` filtering, impact notes (via
engine.impact), drift detection and the pure stale-plan check.

Must never do I/O, read the clock or the environment, and never import the store: a snapshot is read through
engine.pairing's structural protocols, so the pure core stays free of SQL and HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from reconciler.collector import collector_paused
from reconciler.engine import impact
from reconciler.engine.compare import (
    attribute_changes,
    effective_after,
    normalized,
    takes_live_default,
)
from reconciler.engine.pairing import (
    Desired,
    LiveObjectLike,
    PlanContext,
    SnapshotLike,
    desired_objects,
    normalized_live,
)
from reconciler.engine.plan import Action, Change, Note, Plan, Reason, order_changes
from reconciler.errors import PlanError
from reconciler.model import (
    DEFAULT_QUEUE,
    BaseJobTemplate,
    Deployment,
    DesiredState,
    Key,
    Kind,
    ManagedObject,
    Schedule,
    WorkPool,
    pool_key,
    queue_key,
)


def _declared_change(ctx: PlanContext, want: Desired) -> Change:
    live = ctx.snapshot.objects.get(want.key)
    if live is None:
        return Change(want.key, Action.CREATE, None, want.attrs, Reason.NOT_IN_STORE)
    before = ctx.live_attrs(live)
    ignore = ctx.lifecycle(want.key).ignore_changes
    kind = want.key.kind
    # Usually nothing is taken from the live side: then the declared attributes are the result as they are.
    after = (
        effective_after(kind, want.attrs, before, ignore)
        if ignore or takes_live_default(kind, want.attrs, before)
        else want.attrs
    )
    attrs = attribute_changes(want.key.kind, before, after)
    if live.owner is None:
        return Change(want.key, Action.UPDATE, before, after, Reason.ADOPT, attrs, owner_before=None)
    if any(a.forces_replacement for a in attrs):
        return Change(want.key, Action.REPLACE, before, after, Reason.CANNOT_UPDATE, attrs, live.owner)
    if attrs:
        return Change(want.key, Action.UPDATE, before, after, Reason.CONFIG_CHANGED, attrs, live.owner)
    return Change(want.key, Action.NOOP, before, after, None, (), live.owner)


def _delete(live: LiveObjectLike, reason: Reason) -> Change:
    before = normalized_live(live)
    return Change(live.key, Action.DELETE, before, None, reason, (), live.owner)


def _is_kept_default_queue(key: Key) -> bool:
    return key.kind is Kind.WORK_QUEUE and key.name.split("/", 1)[1] == DEFAULT_QUEUE


def _top_level_deletes(ctx: PlanContext, prune: bool, destroy: bool) -> tuple[list[Change], list[str]]:
    """Deletes of managed objects no longer declared (all of them, on destroy); warnings for those kept."""
    deletes: list[Change] = []
    warnings: list[str] = []
    for key in ctx.live_keys:
        live = ctx.snapshot.objects[key]
        if live.owner != ctx.project or (key in ctx.wanted and not destroy):
            continue
        if not destroy and _parent_goes(ctx, key):
            continue  # goes with its parent (see _cascade) or, with prune off, is reported with it
        if _is_kept_default_queue(key):
            continue  # every pool keeps its `default` queue; it goes only with its pool
        if destroy:
            deletes.append(_delete(live, Reason.DESTROY))
        elif prune:
            deletes.append(_delete(live, Reason.NOT_DECLARED))
        else:
            warnings.append(
                f"{key.address} is not declared; kept because prune is off (use --prune to delete it)"
            )
    return deletes, warnings


def _parent_goes(ctx: PlanContext, key: Key) -> bool:
    parent = ctx.snapshot.objects.get(key.parent) if key.parent else None
    return parent is not None and parent.owner == ctx.project and parent.key not in ctx.wanted


def _cascade(ctx: PlanContext, deletes: list[Change]) -> tuple[list[Change], list[str]]:
    """Children of deleted pools and deployments go with them; a pool a kept deployment uses cannot go."""
    deleted = {c.key for c in deletes}
    extra: list[Change] = []
    errors: list[str] = []
    for change in list(deletes):
        for key in sorted(ctx.snapshot.objects):
            live = ctx.snapshot.objects[key]
            if key in deleted:
                continue
            if key.parent == change.key:
                extra.append(_delete(live, change.reason or Reason.NOT_DECLARED))
                deleted.add(key)
                for sub in sorted(ctx.snapshot.objects):
                    if sub.parent == key and sub not in deleted:
                        extra.append(_delete(ctx.snapshot.objects[sub], change.reason or Reason.NOT_DECLARED))
                        deleted.add(sub)
    for change in deletes:
        if change.key.kind is Kind.WORK_POOL:
            pool, queue = change.key.name, None
        elif change.key.kind is Kind.WORK_QUEUE:
            pool, _, queue = change.key.name.partition("/")
            if pool_key(pool) in deleted:
                continue  # goes with its pool, checked there
        else:
            continue
        # The state after the plan decides: a declared deployment counts as the plan leaves it (moved away or
        # onto this pool), an undeclared one as it is live.
        users = sorted(
            {
                k.address
                for k, lo in ctx.snapshot.objects.items()
                if k not in ctx.wanted and _uses(lo.value, pool, queue) and k not in deleted
            }
            | {k.address for k, d in ctx.wanted.items() if _uses(d.value, pool, queue) and k not in deleted}
        )
        if users:
            errors.append(
                f"{change.address} cannot be deleted: {', '.join(users)} still "
                f"{'uses' if len(users) == 1 else 'use'} it; move or delete "
                f"{'it' if len(users) == 1 else 'them'} first"
            )
    return extra, errors


def _uses(value: ManagedObject, pool: str, queue: str | None) -> bool:
    """Whether `value` is a deployment whose runs go to this pool (or this queue of it)."""
    if not isinstance(value, Deployment) or value.work_pool != pool:
        return False
    return queue is None or (value.work_queue or DEFAULT_QUEUE) == queue


def _ownership_errors(ctx: PlanContext) -> list[str]:
    errors = []
    for key in ctx.wanted_keys:
        live = ctx.snapshot.objects.get(key)
        if live is not None and live.owner not in (None, ctx.project):
            errors.append(
                f"{key.address} is managed by project {live.owner!r}, not {ctx.project!r}; remove it from "
                f"this config or from project {live.owner!r} first"
            )
    return errors


def _protect_errors(ctx: PlanContext, changes: Iterable[Change]) -> list[str]:
    return [
        f"{c.address} has `protect: true` and would be "
        f"{'replaced' if c.action is Action.REPLACE else 'deleted'}; set `protect: false` first to allow it"
        for c in changes
        if c.action in (Action.DELETE, Action.REPLACE) and ctx.protected(c.key)
    ]


def _protection(ctx: PlanContext, changes: Iterable[Change]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(addresses the config protects, addresses whose recorded protection this plan turns on or off)."""
    protected = tuple(sorted(c.address for c in changes if c.key in ctx.wanted and ctx.protected(c.key)))
    flips = []
    for c in changes:
        live = ctx.snapshot.objects.get(c.key)
        if c.action is Action.DELETE or live is None:
            continue
        if ctx.protected(c.key) != bool(getattr(live, "protected", False)):
            flips.append(c.address)
    return protected, tuple(sorted(flips))


def _mass_delete_error(ctx: PlanContext, changes: Iterable[Change]) -> list[str]:
    managed = sum(1 for lo in ctx.snapshot.objects.values() if lo.owner == ctx.project)
    gone = sum(1 for c in changes if c.action is Action.DELETE and c.owner_before == ctx.project)
    if managed and gone * 2 > managed:
        return [
            f"this plan would delete {gone} of the {managed} objects project {ctx.project!r} manages (more "
            "than half); check the config, then pass --allow-mass-delete if this is intended"
        ]
    return []


# ---------------------------------------------------------------------------------------------- targets


def _target_keys(ctx: PlanContext, targets: Sequence[str], changes: Sequence[Change]) -> set[Key]:
    """The targeted objects, the objects declared inside them, and the parents they need created first."""
    by_key = {c.key: c for c in changes}
    chosen: set[Key] = set()
    for address in targets:
        try:
            key = Key.parse(address)
        except ValueError as exc:
            raise PlanError(f"--target {exc}") from None
        if key not in by_key and key not in ctx.snapshot.objects:
            raise PlanError(f"--target {address} matches no declared or live object; check the address")
        chosen.add(key)
        chosen |= {k for k in by_key if k.parent == key}
    for key in list(chosen):
        chosen |= _dependencies(ctx, key, by_key)
    return chosen


def _dependencies(ctx: PlanContext, key: Key, by_key: Mapping[Key, Change]) -> set[Key]:
    needed: set[Key] = set()
    parents = [key.parent] if key.parent else []
    want = ctx.wanted.get(key)
    if want is not None and isinstance(want.value, Deployment) and want.value.work_pool:
        parents.append(pool_key(want.value.work_pool))
        parents.append(queue_key(want.value.work_pool, want.value.work_queue or DEFAULT_QUEUE))
    for parent in parents:
        change = by_key.get(parent)
        if change is not None and change.action in (Action.CREATE, Action.REPLACE):
            needed.add(parent)
            needed |= _dependencies(ctx, parent, by_key)
    return needed


# ---------------------------------------------------------------------------------------------- impact notes


# Working out each schedule's runs costs ~1 ms; past this many schedule changes (a first apply of a large
# project) the notes would dominate the plan's time and no reader would go through them.
MAX_SCHEDULE_NOTES = 200


def _touched(change: Change) -> bool:
    return change.action in (Action.CREATE, Action.DELETE, Action.REPLACE) or bool(change.attributes)


def _notes(ctx: PlanContext, change: Change, *, schedules: bool = True) -> tuple[Note, ...]:
    kind = change.key.kind
    notes: list[Note] = []
    if kind is Kind.SCHEDULE and schedules and _touched(change):
        before = Schedule.model_validate(change.before) if change.before is not None else None
        after = Schedule.model_validate(change.after) if change.after is not None else None
        notes += impact.schedule_notes(before, after, ctx.now)
    want = ctx.wanted.get(change.key)
    if kind is Kind.WORK_POOL and change.action is Action.UPDATE and _template_changed(change):
        assert want is not None  # an update pairs both sides
        notes += _template_notes(ctx, want.value, change)
    if kind in (Kind.WORK_POOL, Kind.WORK_QUEUE) and change.action in (Action.DELETE, Action.REPLACE):
        note = impact.runs_in_flight_note(change.address, ctx.runs_in_flight.get(change.address, {}))
        if note is not None:
            notes.append(note)
    return tuple(notes)


def _template_changed(change: Change) -> bool:
    return any(a.path.split(".", 1)[0] == "base_job_template" for a in change.attributes)


def _template_notes(ctx: PlanContext, pool: ManagedObject, change: Change) -> list[Note]:
    """Notes for the deployments (declared, else live) that use a pool whose template changes."""
    assert isinstance(pool, WorkPool) and change.before is not None and change.after is not None
    before = BaseJobTemplate.model_validate(change.before["base_job_template"])
    after = BaseJobTemplate.model_validate(change.after["base_job_template"])
    users: dict[Key, Deployment] = {}
    for key, value in [
        *((k, lo.value) for k, lo in ctx.snapshot.objects.items()),
        *((k, d.value) for k, d in ctx.wanted.items()),
    ]:
        if isinstance(value, Deployment) and value.work_pool == pool.name:
            users[key] = value  # the declared version wins: it is added last
    return impact.template_notes(pool.name, before, after, [users[k] for k in sorted(users)])


# ---------------------------------------------------------------------------------------------- public API


NOTES_LEFT_OUT = "run impact notes are left out for the"  # the start of the one warning about the changes


def standing_warnings(plan: Plan) -> tuple[str, ...]:
    """The warnings of `plan` that its apply leaves standing (the same plan again would warn of them): all but
    the one about the changes themselves."""
    return tuple(w for w in plan.warnings if not w.startswith(NOTES_LEFT_OUT))


@collector_paused()  # a large plan builds ~100,000 acyclic dicts; see reconciler.collector
def make_plan(
    desired: DesiredState,
    snapshot: SnapshotLike,
    *,
    now: datetime,
    prune: bool | None = None,
    targets: Sequence[str] = (),
    destroy: bool = False,
    allow_mass_delete: bool = False,
    runs_in_flight: Mapping[str, Mapping[str, int]] = {},
) -> Plan:
    """Compare what `desired` declares with `snapshot` and return the Plan; PlanError when a safety rule
    refuses it (another project's objects, `protect`, mass delete, a pool still in use, a bad target)."""
    wanted = desired_objects(desired, snapshot.default_pool)
    ctx = PlanContext(
        desired,
        snapshot,
        wanted,
        now,
        runs_in_flight,
        live_keys=sorted(snapshot.objects),
        wanted_keys=sorted(wanted),
    )
    use_prune = desired.prune if prune is None else prune
    errors = _ownership_errors(ctx) if not destroy else []
    changes = [] if destroy else [_declared_change(ctx, wanted[k]) for k in ctx.wanted_keys]
    deletes, warnings = _top_level_deletes(ctx, use_prune, destroy)
    cascaded, cascade_errors = _cascade(ctx, deletes)
    changes += deletes + cascaded
    if targets:
        chosen = _target_keys(ctx, targets, changes)
        changes = [c for c in changes if c.key in chosen]
    errors += cascade_errors + _protect_errors(ctx, changes)
    if not destroy and not allow_mass_delete:
        errors += _mass_delete_error(ctx, changes)
    if errors:
        raise PlanError("the plan is refused:\n" + "\n".join(f"  - {e}" for e in errors), errors=errors)
    schedule_changes = sum(1 for c in changes if c.key.kind is Kind.SCHEDULE and _touched(c))
    with_schedule_notes = schedule_changes <= MAX_SCHEDULE_NOTES
    if not with_schedule_notes:
        warnings.append(
            f"{NOTES_LEFT_OUT} {schedule_changes} schedule changes (more than "
            f"{MAX_SCHEDULE_NOTES}); narrow the plan with --target to see them"
        )
    changes = [_with_notes(c, _notes(ctx, c, schedules=with_schedule_notes)) for c in changes]
    protected, protection_changes = _protection(ctx, changes)
    drift = [
        _without_ignored(ctx, d)
        for d in _drift(snapshot, desired.project, ctx.live_attrs, ctx.drifted, ctx.live_keys)
    ]
    drift += _deleted_outside(ctx)
    if targets:
        drift = [d for d in drift if d.key in chosen]
    return Plan(
        project=desired.project,
        changes=order_changes(changes),
        drift=order_changes(d for d in drift if d.attributes or d.action is Action.DELETE),
        fingerprints={k.address: snapshot.objects[k].fingerprint for k in ctx.live_keys},
        warnings=tuple(sorted(warnings)),
        prune=use_prune,
        targets=tuple(targets),
        destroy=destroy,
        source_dir=desired.source_dir,
        secret_patterns=desired.secret_patterns,
        protected=protected,
        protection_changes=protection_changes,
    )


def _deleted_outside(ctx: PlanContext) -> list[Change]:
    """Declared objects this project managed that were deleted outside wp since (the plan makes them again)."""
    deleted = ctx.snapshot.deleted
    if not deleted:
        return []
    found = []
    for key in ctx.wanted_keys:
        gone = deleted.get(key)
        if gone is None or gone.owner != ctx.project or key in ctx.snapshot.objects:
            continue
        before = normalized(key.kind, gone.applied) if gone.applied is not None else None
        found.append(
            Change(key, Action.DELETE, before, None, Reason.DELETED_OUTSIDE, owner_before=gone.owner)
        )
    return found


def _with_notes(change: Change, notes: tuple[Note, ...]) -> Change:
    return change if notes == change.notes else replace(change, notes=notes)


def _without_ignored(ctx: PlanContext, drift: Change) -> Change:
    """Fields in `ignore_changes` are the ones operators may change by hand: not drift."""
    ignored = ctx.lifecycle(drift.key).ignore_changes
    kept = tuple(
        a for a in drift.attributes if not any(a.path == p or a.path.startswith(p + ".") for p in ignored)
    )
    return replace(drift, attributes=kept)


def detect_drift(snapshot: SnapshotLike, project: str) -> tuple[Change, ...]:
    """Managed objects whose live attributes differ from what wp last applied (before=applied, after=live)."""
    return _drift(snapshot, project, normalized_live)


def _drift(
    snapshot: SnapshotLike,
    project: str,
    live_attrs: Callable[[LiveObjectLike], dict[str, Any]],
    drifted: Callable[[LiveObjectLike], bool] = lambda live: True,
    keys: Sequence[Key] | None = None,
) -> tuple[Change, ...]:
    found = []
    for key in sorted(snapshot.objects) if keys is None else keys:
        live = snapshot.objects[key]
        if live.owner != project or live.applied is None or not drifted(live):
            continue
        applied = normalized(key.kind, live.applied)
        now_live = live_attrs(live)
        attrs = attribute_changes(key.kind, applied, now_live)
        if attrs:
            found.append(
                Change(key, Action.UPDATE, applied, now_live, Reason.CHANGED_OUTSIDE, attrs, live.owner)
            )
    return order_changes(found)


def check_stale(plan: Plan, snapshot: SnapshotLike) -> list[str]:
    """What changed since `plan` was made among the objects it touches, one message per object (empty =
    fresh). A fingerprint missing from the plan means the object did not exist when it was made."""
    problems = []
    for change in plan.actionable:
        expected = plan.fingerprints.get(change.address)
        live = snapshot.objects.get(change.key)
        if live is None and expected is not None:
            problems.append(f"{change.address} was deleted since the plan was made")
        elif live is not None and expected is None:
            problems.append(f"{change.address} was created since the plan was made")
        elif live is not None and live.fingerprint != expected:
            problems.append(
                f"{change.address} changed since the plan was made "
                f"(fingerprint {expected} -> {live.fingerprint})"
            )
    return sorted(problems)
