"""What the HTTP API shows of secret values, and what it does with the masks a client sends back.

Owns: the sealed form of every answer that can hold a secret (deployments, pools, runs, snapshots: the values
`model.mask_secrets` hides, each as `(sensitive sha256:…)`, `reconciler.secret_values`); putting the store's clear
values back where a client returns such a mask (a run made from a masked deployment, a plan that keeps a live
value, a partial update); and the masks of a run's secret values, which the server applies once more to the state
messages and log lines it receives. Only `GET /flow_runs/{id}/inputs` (the worker holding the run) answers in
clear. Must never decide which values are secret, nor write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, overload

from fastapi import Depends
from pydantic import BaseModel

from reconciler.api.dependencies import StoreDep
from reconciler.api.shapes import LiveObjectShape, SnapshotShape
from reconciler.engine.plan import Plan
from reconciler.errors import NotFoundError, ValidationError
from reconciler.model import Deployment, FlowRun, Key, WorkPool, attributes
from reconciler.secret_values import has_sealed, run_secret_values, seal_dump, text_masks, unseal
from reconciler.store.base import Store


class _StorePatterns(Sequence[str]):
    """The store's secret key patterns, read at their first use: most answers (a run without parameters, a
    claim of such runs) have no value to seal, and reading the patterns was a database transaction of its own
    in every such request."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._patterns: tuple[str, ...] | None = None

    def _loaded(self) -> tuple[str, ...]:
        if self._patterns is None:
            self._patterns = self._store.secret_patterns()
        return self._patterns

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())


async def _patterns(store: StoreDep) -> Sequence[str]:
    return _StorePatterns(store)  # async: no thread hop to make an object that reads nothing yet


# The key patterns of secrets, read at most once per request: the defaults and those applied projects added.
SecretPatterns = Annotated[Sequence[str], Depends(_patterns)]


def shown_deployment(deployment: Deployment, patterns: Sequence[str]) -> dict[str, Any]:
    return _shown_deployment_dump(deployment.model_dump(mode="json"), patterns)


def _shown_deployment_dump(dump: Mapping[str, Any], patterns: Sequence[str]) -> dict[str, Any]:
    data = seal_dump("deployment", dump, patterns)
    if data.get("schedules"):
        data["schedules"] = [seal_dump("schedule", s, patterns) for s in data["schedules"]]
    return data


def shown_pool(pool: WorkPool, patterns: Sequence[str]) -> dict[str, Any]:
    return seal_dump("work_pool", pool.model_dump(mode="json"), patterns)


def shown_run(run: FlowRun, patterns: Sequence[str]) -> dict[str, Any]:
    return seal_dump("flow_run", run.model_dump(mode="json"), patterns)


def _shown_object(o: LiveObjectShape, patterns: Sequence[str]) -> LiveObjectShape:
    kind = o.kind.value
    if kind == "deployment":
        value = _shown_deployment_dump(o.value, patterns)
    else:
        value = seal_dump(kind, o.value, patterns)
    applied = seal_dump(kind, o.applied, patterns) if o.applied is not None else None
    return o.model_copy(update={"value": value, "applied": applied})


def shown_snapshot(shape: SnapshotShape, patterns: Sequence[str]) -> SnapshotShape:
    deleted = [
        d.model_copy(update={"applied": seal_dump(d.kind.value, d.applied, patterns)}) if d.applied else d
        for d in shape.deleted
    ]
    objects = [_shown_object(o, patterns) for o in shape.objects]
    return shape.model_copy(update={"objects": objects, "deleted": deleted, "sealed": True})


# ------------------------------------------------------------------------------------- masks sent back


def _refuse_masks(value: Any, path: Sequence[str | int]) -> None:
    if has_sealed(value):
        raise ValidationError(
            "a masked secret `(sensitive sha256:…)` was sent where the store holds no value it matches; "
            "send the clear value",
            path=list(path),
        )


def restored(value: Any, clear: Any, path: Sequence[str | int]) -> Any:
    """`value` with the masks it carries replaced by the matching clear values from `clear`."""
    if not has_sealed(value):
        return value
    out = unseal(value, clear)
    _refuse_masks(out, path)
    return out


def restored_run(store: Store, run: FlowRun) -> FlowRun:
    """A run posted with masks in its parameters (made from a masked deployment) gets the clear values back:
    the deployment's parameters, under the schedule's for a scheduled run."""
    if not (has_sealed(run.parameters) or has_sealed(run.job_variables)):
        return run
    flow, _, name = run.deployment.partition("/")
    try:
        deployment = store.get_deployment(flow, name)
    except NotFoundError:
        deployment = None
    params: dict[str, Any] = dict(deployment.parameters) if deployment else {}
    for schedule in deployment.schedules if deployment else ():
        if schedule.slug == run.schedule_slug:
            params |= schedule.parameters
    job_variables = deployment.job_variables if deployment else {}
    return run.model_copy(
        update={
            "parameters": restored(run.parameters, params, ["parameters"]),
            "job_variables": restored(run.job_variables, job_variables, ["job_variables"]),
        }
    )


def restored_plan(store: Store, plan: Plan) -> Plan:
    """A plan whose changes carry masks (a value taken from the live side of a sealed snapshot, e.g. under
    `ignore_changes`) gets the live clear values back; a mask that matches nothing is refused."""
    sealed = [c for c in plan.changes if c.after is not None and has_sealed(c.after)]
    if not sealed:
        return plan
    live = store.snapshot(only=[c.key for c in sealed]).objects
    by_key: dict[Key, Any] = {}
    for change in sealed:
        found = live.get(change.key)
        clear = attributes(found.value) if found is not None else {}
        by_key[change.key] = restored(change.after, clear, [change.address])
    changes = tuple(replace(c, after=by_key[c.key]) if c.key in by_key else c for c in plan.changes)
    return replace(plan, changes=changes)


def restored_fields(fields: Mapping[str, Any], current: BaseModel) -> dict[str, Any]:
    """A partial update's fields with masks put back from the object's current (clear) values."""
    clear = current.model_dump(mode="json")
    out: dict[str, Any] = {}
    for name, value in fields.items():
        plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        if has_sealed(plain):
            plain = restored(plain, clear.get(name), [name])
            value = type(value).model_validate(plain) if isinstance(value, BaseModel) else plain
        out[name] = value
    return out


# ------------------------------------------------------------------------------------- free text


def run_masks(store: Store, run_id: str) -> tuple[str, ...]:
    """The texts to mask in what a run reports: its secret values in their printed forms."""
    try:
        run = store.get_flow_run(run_id)
    except NotFoundError:
        return ()
    flow, _, name = run.deployment.partition("/")
    try:
        deployment: Deployment | None = store.get_deployment(flow, name)
    except NotFoundError:
        deployment = None
    try:
        pool: WorkPool | None = store.get_work_pool(run.work_pool)
    except NotFoundError:
        pool = None
    return text_masks(run_secret_values(run, deployment, pool, store.secret_patterns()))
