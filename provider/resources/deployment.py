"""`wp_deployment`: a deployment, identified by `flow/name`, with its schedules as a nested list keyed
by slug.

Owns the deployment's identity (flow computed from the entrypoint's function when not set), the
plan-time check of
`job_variables` against its pool's variables schema, and its writes. The Store protocol has no deployment CRUD
create, so every write goes through the one apply pipeline (`engine.apply.apply_plan`): a Plan of the
deployment
and its schedules, owner = the provider's project, lock and stale check included, recorded in `wp history`.
Must never plan generic attributes itself (resources.base does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from provider.codec import UNKNOWN
from provider.resources.base import Resource, State
from reconciler.diagnostics import Diagnostic, error
from reconciler.engine.plan import Action, Change, Plan, Reason, order_changes
from reconciler.errors import NotFoundError
from reconciler.model import (
    DEFAULT_QUEUE,
    Deployment,
    Key,
    Schedule,
    attributes,
    default_flow_name,
    deployment_key,
    schedule_key,
)

ACTOR = "terraform-provider-wp"


def flow_from_entrypoint(entrypoint: Any) -> Any:
    """`flows/etl.py:run_etl` → `run-etl`; UNKNOWN while the entrypoint is unknown or has no function."""
    if not isinstance(entrypoint, str) or ":" not in entrypoint:
        return UNKNOWN
    return default_flow_name(entrypoint.rsplit(":", 1)[1])


class DeploymentResource(Resource):
    type_name: ClassVar[str] = "wp_deployment"
    model = Deployment
    what = "deployment"

    def identity(self, state: Mapping[str, Any]) -> Any:
        flow, name = state.get("flow"), state.get("name")
        return f"{flow}/{name}" if isinstance(flow, str) and isinstance(name, str) else UNKNOWN

    def ident_of(self, state: Mapping[str, Any]) -> tuple[str, ...]:
        return (str(state["flow"]), str(state["name"]))

    def parse_import_id(self, import_id: str) -> tuple[str, ...]:
        flow, sep, name = import_id.partition("/")
        if not sep or not flow or not name or "/" in name:
            raise ValueError(f"import ID {import_id!r} must be FLOW/NAME, e.g. etl/nightly")
        return (flow, name)

    def complete(self, planned: State, config: Mapping[str, Any], prior: Mapping[str, Any] | None) -> State:
        if config.get("flow") is None:
            derived = flow_from_entrypoint(config.get("entrypoint"))
            # keep an imported or earlier flow name unless the entrypoint says otherwise
            planned["flow"] = prior["flow"] if prior and derived == UNKNOWN else derived
        if config.get("work_queue") is None:
            planned["work_queue"] = DEFAULT_QUEUE  # what "no queue" means; planned so it never reads as drift
        if config.get("work_pool") is None:
            planned["work_pool"] = (prior or {}).get("work_pool") or self._default_pool()
        return planned

    def _default_pool(self) -> str | None:
        """The store's default pool, which a deployment without `work_pool` uses (None when there is none)."""
        return self.ctx.store.get_default_work_pool()

    def to_state(self, live: Any, prior: Mapping[str, Any] | None) -> State:
        state = super().to_state(live, prior)
        if state.get("work_queue") is None:
            state["work_queue"] = DEFAULT_QUEUE  # the store's "no queue" is the pool's default queue
        return state

    def check(self, planned: Mapping[str, Any]) -> list[Diagnostic]:
        pool, jv = planned.get("work_pool"), planned.get("job_variables")
        if not isinstance(pool, str) or not isinstance(jv, str):
            return []
        try:
            template = self.ctx.store.get_work_pool(pool).base_job_template
        except NotFoundError:
            return []  # made in the same apply, or missing: the store reports it then
        if template is None:
            return []
        from reconciler.engine.template_variables import validate_job_variables

        problems = validate_job_variables(template, json.loads(jv))
        return [
            error(
                f"job_variables refused by work pool {pool!r}",
                f"{p.path or '(top level)'}: {p.message}",
                path=("job_variables",),
            )
            for p in problems
        ]

    def fetch(self, ident: tuple[str, ...]) -> Deployment:
        return self.ctx.store.get_deployment(ident[0], ident[1])

    def create(self, obj: Any) -> None:
        self._write(None, obj)

    def update(self, ident: tuple[str, ...], obj: Any, changed: tuple[str, ...]) -> None:
        self._write(self.fetch(ident), obj)

    def delete(self, ident: tuple[str, ...]) -> None:
        self._write(self.fetch(ident), None)

    def _write(self, live: Deployment | None, new: Deployment | None) -> None:
        from reconciler.engine.apply import apply_plan

        changes = _changes(live, new)
        if not changes:
            return
        snapshot = self.ctx.store.snapshot(only=[c.key for c in changes])  # not the whole store
        prints = {}
        for c in changes:
            found = snapshot.get(c.key)
            if found is not None:
                prints[c.address] = found.fingerprint
        plan = Plan(
            project=self.ctx.project, changes=order_changes(changes), fingerprints=prints, destroy=new is None
        )
        # Terraform writes up to 10 resources at once (-parallelism): wait for the apply lock, don't fail on it.
        apply_plan(self.ctx.store, plan, actor=ACTOR, lock_timeout=LOCK_WAIT_SECONDS)


LOCK_WAIT_SECONDS = 300.0


def _changes(live: Deployment | None, new: Deployment | None) -> list[Change]:
    """The deployment change and one change per schedule slug, in apply order (deletes first, children
    first)."""
    dep = new or live
    assert dep is not None
    key = deployment_key(dep.flow, dep.name)
    old_s = {s.slug: s for s in (live.schedules if live else ())}
    new_s = {s.slug: s for s in (new.schedules if new else ())}
    deletes = [
        _change(schedule_key(dep.flow, dep.name, slug), s, None)
        for slug, s in old_s.items()
        if slug not in new_s
    ]
    main = _change(key, live, new)
    upserts = [
        _change(schedule_key(dep.flow, dep.name, slug), old_s.get(slug), s)
        for slug, s in new_s.items()
        if old_s.get(slug) != s
    ]
    if new is None:
        return [c for c in (*deletes, main) if c is not None]
    return [c for c in (*deletes, main, *upserts) if c is not None]


def _change(
    key: Key, before: Deployment | Schedule | None, after: Deployment | Schedule | None
) -> Change | None:
    b = attributes(before) if before is not None else None
    a = attributes(after) if after is not None else None
    if b == a:
        return None
    if b is None:
        return Change(key, Action.CREATE, None, a, Reason.NOT_IN_STORE)
    if a is None:
        return Change(key, Action.DELETE, b, None, Reason.DESTROY)
    return Change(key, Action.UPDATE, b, a, Reason.CONFIG_CHANGED)
