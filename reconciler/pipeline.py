"""The one pipeline: load → validate → normalize → snapshot → diff → plan.

The CLI, the Terraform provider, the GitHub Action and the sync loop call these functions; none keeps its own copy
of a stage. This module does I/O only through the stages it calls (config loading, the store).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reconciler.collector import collector_paused
from reconciler.config.inputs import InputRecord, WatchedEnv, context_of, record_of, watching
from reconciler.config.load import LoadedConfig, load_project
from reconciler.config.validate import validate_references
from reconciler.diagnostics import Diagnostic, has_errors, sort_diagnostics
from reconciler.engine.diff import make_plan
from reconciler.engine.pairing import desired_objects
from reconciler.engine.plan import Action, Plan
from reconciler.model import DesiredState, Key, Kind, WorkPool
from reconciler.secret_values import has_sealed, unseal
from reconciler.store.base import LiveObject, Snapshot, Store


@dataclass(frozen=True)
class PlanOutcome:
    """A plan, or the diagnostics that prevented one (then `plan` is None)."""

    plan: Plan | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    loaded: LoadedConfig | None = None
    snapshot: Snapshot | None = None
    # What the load read (with `watch_inputs`), for the no-op shortcut (reconciler/shortcut.py); None when it
    # was not watched or cannot be checked again cheaply.
    inputs: InputRecord | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None


def existing_pools(snapshot: Snapshot) -> dict[str, WorkPool]:
    return {
        obj.key.name: obj.value
        for obj in snapshot.objects.values()
        if obj.key.kind is Kind.WORK_POOL and isinstance(obj.value, WorkPool)
    }


def load_and_check(directory: str | Path, env: Mapping[str, str], snapshot: Snapshot) -> LoadedConfig:
    """Load the project and add the checks that need the live state (pools declared elsewhere)."""
    # Source positions are only needed to place diagnostics: a clean project (every no-op plan) skips them.
    loaded = load_project(directory, env, positions=False)
    # A config with errors is still checked against the store, on its sound parts: every error at once.
    checked = loaded.desired or loaded.partial
    if checked is None:
        return loaded
    pools = existing_pools(snapshot)
    extra = validate_references(checked, loaded.sources, pools, snapshot.default_pool)
    if not extra:
        return loaded
    if not loaded.positioned:  # loaded without positions: again with them, to place these diagnostics
        loaded = load_project(directory, env)
        checked = loaded.desired or loaded.partial
        if checked is None:  # the files changed in between
            return loaded
        extra = validate_references(checked, loaded.sources, pools, snapshot.default_pool)
    diagnostics = sort_diagnostics([*loaded.diagnostics, *extra])
    desired: DesiredState | None = None if has_errors(diagnostics) else loaded.desired
    return LoadedConfig(desired, diagnostics, loaded.sources, loaded.files, loaded.positioned)


def plan_project(
    directory: str | Path,
    store: Store,
    *,
    env: Mapping[str, str],
    now: datetime,
    prune: bool | None = None,
    targets: Sequence[str] = (),
    destroy: bool = False,
    allow_mass_delete: bool = False,
    watch_inputs: bool = False,
) -> PlanOutcome:
    """`watch_inputs`: also record what the load read (PlanOutcome.inputs), for the no-op shortcut."""
    # The stages build ~1M short-lived objects without reference cycles; the collector rescanning them would
    # cost more than the plan itself.
    with collector_paused():
        if not watch_inputs:
            return _plan_project(directory, store, env, now, prune, targets, destroy, allow_mass_delete)
        with watching() as log:
            outcome = _plan_project(
                directory, store, WatchedEnv(env, log), now, prune, targets, destroy, allow_mass_delete
            )
        inputs = record_of(Path(directory), log, context_of(prune=prune))
        return replace(outcome, inputs=inputs)


def _plan_project(
    directory: str | Path,
    store: Store,
    env: Mapping[str, str],
    now: datetime,
    prune: bool | None,
    targets: Sequence[str],
    destroy: bool,
    allow_mass_delete: bool,
) -> PlanOutcome:
    snapshot = store.snapshot()
    loaded = load_and_check(directory, env, snapshot)
    if loaded.desired is None:
        return PlanOutcome(None, loaded.diagnostics, loaded, snapshot)
    desired = loaded.desired.model_copy(update={"source_dir": str(Path(directory).resolve())})
    if snapshot.sealed:
        snapshot = unsealed(snapshot, desired)

    def build(in_flight: Mapping[str, Mapping[str, int]]) -> Plan:
        plan = make_plan(
            desired,
            snapshot,
            now=now,
            prune=prune,
            targets=targets,
            destroy=destroy,
            allow_mass_delete=allow_mass_delete,
            runs_in_flight=in_flight,
        )
        # Its changes' `after` values are the attributes of the models the load validated (or, for fields the
        # plan leaves as they are, of the live objects the store read): a store writes them without
        # validating them again.
        return replace(plan, validated=True)

    plan = build({})
    # Counting runs costs a query per pool: only pay it when the plan deletes pools or queues.
    in_flight = runs_in_flight(store, plan)
    if in_flight:
        plan = build(in_flight)
    return PlanOutcome(plan, loaded.diagnostics, loaded, snapshot)


# The attributes that can hold sealed masks (reconciler.secret_values.SECRET_FIELDS, and a pool's template).
_SEALABLE = ("parameters", "job_variables", "pull_steps", "base_job_template")


def unsealed(snapshot: Snapshot, desired: DesiredState) -> Snapshot:
    """A snapshot read through the API, with the config's clear secret values put back wherever the store's
    sealed masks match them: an unchanged secret compares equal, a changed one still differs (and shows masked)."""
    wanted = desired_objects(desired, snapshot.default_pool)
    objects: dict[Key, LiveObject] = dict(snapshot.objects)
    for key, live in snapshot.objects.items():
        want = wanted.get(key)
        if want is None:
            continue
        fields: dict[str, Any] = {}
        for name in _SEALABLE:
            shown = getattr(live.value, name, None)
            plain = shown.model_dump(mode="json") if isinstance(shown, BaseModel) else shown
            if plain and has_sealed(plain):
                clear = unseal(plain, want.attrs.get(name))
                if isinstance(shown, BaseModel):
                    clear = type(shown).model_validate(clear)
                fields[name] = tuple(clear) if isinstance(shown, tuple) else clear
        applied = live.applied
        if applied is not None and any(has_sealed(applied.get(n)) for n in _SEALABLE):
            applied = {k: unseal(v, want.attrs.get(k)) if k in _SEALABLE else v for k, v in applied.items()}
        if fields or applied is not live.applied:
            # the values put back are the config's own, already validated: no need to validate the model again
            value = live.value.model_copy(update=fields)
            objects[key] = replace(live, value=value, applied=applied, attrs=None)
    return replace(snapshot, objects=objects, sealed=False)


def runs_in_flight(store: Store, plan: Plan) -> dict[str, dict[str, int]]:
    """Runs by state in each pool and queue the plan deletes, for its impact note (empty if the store keeps no
    runs)."""
    count = getattr(store, "count_runs_by_state", None)
    if count is None:
        return {}
    out: dict[str, dict[str, int]] = {}
    for change in plan.changes:
        if change.action is not Action.DELETE or change.key.kind not in (Kind.WORK_POOL, Kind.WORK_QUEUE):
            continue
        pool, _, queue = change.key.name.partition("/")
        counts = count(pool, queue or None)
        if counts:
            out[change.address] = dict(counts)
    return out
