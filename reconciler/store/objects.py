"""Writing a plan's changes in SQL, after checking that it is fresh.

Owns the stale-plan check and the batched writes of a plan (executemany per run of same-kind, same-action
changes), including the pool's `default` queue and queue-priority settling. Must never commit or open
transactions: the caller (SqlStore.apply) owns the one transaction all of this runs in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import Any, TypeVar

import pydantic
from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    select,
    update,
)

from reconciler.engine.plan import Action, Change, Plan
from reconciler.errors import StalePlanError, ValidationError
from reconciler.model import (
    DEFAULT_QUEUE,
    Deployment,
    Key,
    Kind,
    Schedule,
    WorkPool,
    WorkQueue,
    pool_key,
    queue_key,
)
from reconciler.store import rows, tables
from reconciler.store.base import ApplyProgress, LiveObject
from reconciler.store.bulk import insert_rows
from reconciler.store.column_json import Finite
from reconciler.store.priorities import next_free_priority, settle_priorities
from reconciler.store.runs import delete_scheduled_runs_in
from reconciler.store.settings import PROTECTED_SETTING, forget_deleted, read_protected, write_setting_map

DEFAULT_QUEUE_DESCRIPTION = "The work pool's default queue."
WRITE_BATCH = 250  # changes of one kind and action per round of statements
M = TypeVar("M", bound=pydantic.BaseModel)

# -------------------------------------------------------------------------------------------- checking


_STALE_NAMED = 5


def check_fresh(plan: Plan, live: Mapping[Key, LiveObject]) -> None:
    """StalePlanError naming each object the plan would change whose live state moved since planning."""
    if not live and not plan.fingerprints:
        return  # planned against an empty store, which is still empty: nothing can have moved
    stale: list[str] = []
    for change in plan.actionable:
        now_object = live.get(change.key)
        expected = plan.fingerprints.get(change.address)
        actual = now_object.fingerprint if now_object else None
        if actual == expected:
            continue
        if expected is None:
            stale.append(f"{change.address} (created since the plan was made)")
        elif actual is None:
            stale.append(f"{change.address} (deleted since the plan was made)")
        else:
            stale.append(f"{change.address} (changed since the plan was made)")
    if stale:
        # thousands of moved objects made one unreadable 300 KB line: name a few, count the rest
        named = ", ".join(stale[:_STALE_NAMED])
        more = f" and {len(stale) - _STALE_NAMED} more" if len(stale) > _STALE_NAMED else ""
        raise StalePlanError(
            f"the plan is stale: {named}{more}; nothing was applied. Run `wp plan` again and review it.",
            addresses=[s.split(" ", 1)[0] for s in stale],
        )


def _model(model: type[M], change: Change) -> M:
    try:
        return model.model_validate(dict(change.after or {}))
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"{change.address}: {path}: {first['msg']}", path=[str(p) for p in first["loc"]]
        ) from None


# --------------------------------------------------------------------------------------------- writing


def _resumed(change: Change) -> bool:
    return bool((change.before or {}).get("paused")) and not (change.after or {}).get("paused")


class PlanWriter:
    """Writes one plan's changes on one connection, then settles queue priorities of the pools it touched."""

    def __init__(
        self, conn: Connection, plan: Plan, now: datetime, progress: ApplyProgress | None = None
    ) -> None:
        self.conn = conn
        self.progress = progress
        self.plan = plan
        self.now = now
        self.project = plan.project
        self.touched_pools: set[str] = set()
        self.declared = {c.key for c in plan.changes}
        self.deleted = {c.key for c in plan.changes if c.action is Action.DELETE}
        self.declared_priority: dict[Key, int | None] = {
            c.key: (c.after or {}).get("priority") for c in plan.changes if c.key.kind is Kind.WORK_QUEUE
        }

    def write(self) -> None:
        handlers: dict[Kind, Callable[[Action, Sequence[Change]], None]] = {
            Kind.WORK_POOL: self._pools,
            Kind.WORK_QUEUE: self._queues,
            Kind.DEPLOYMENT: self._deployments,
            Kind.SCHEDULE: self._schedules,
        }
        total, done = len(self.plan.actionable), 0
        for (kind, action), group in groupby(self.plan.actionable, key=lambda c: (c.key.kind, c.action)):
            changes = list(group)
            # Batches of the same statements: a progress bar moves, and one executemany stays a sane size.
            for start in range(0, len(changes), WRITE_BATCH):
                batch = changes[start : start + WRITE_BATCH]
                handlers[kind](action, batch)
                done += len(batch)
                if self.progress is not None:
                    self.progress("writing", done, total)
        self._settle_queue_priorities()
        self._record_protection()
        forget_deleted(self.conn, (c.address for c in self.plan.actionable if c.action is Action.CREATE))

    def _record_protection(self) -> None:
        """Remember which of the plan's objects are protected; deleted ones are forgotten."""
        protected = read_protected(self.conn)
        before = dict(protected)
        wanted = set(self.plan.protected)
        for change in self.plan.changes:
            if change.action is Action.DELETE or change.address not in wanted:
                protected.pop(change.address, None)
            else:
                protected[change.address] = self.project
        if protected != before:
            write_setting_map(self.conn, PROTECTED_SETTING, protected)

    # -- rows of changes
    def _trusted(
        self, change: Change, values_of: Callable[[Mapping[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """The row values of a change of a validated plan (`Plan.validated`), read from its `after` without
        building and dumping its model again (a fifth of writing 24,000 objects); None: build the model,
        which also validates what a plan file or a request says."""
        if not self.plan.validated or change.after is None:
            return None
        return values_of(change.after)

    def _pool_values(self, change: Change) -> dict[str, Any]:
        return self._trusted(change, rows.pool_values_of) or rows.pool_values(_model(WorkPool, change))

    # -- generic batched statements
    def _managed(self, values: dict[str, Any], applied: Mapping[str, Any]) -> dict[str, Any]:
        out = values | rows.managed_columns(self.project, applied, self.now)
        if self.plan.validated and out["applied"] is not None:
            out["applied"] = Finite(out["applied"])  # attributes dumped in JSON mode: no NaN or infinity
        return out

    def _insert(self, table: Table, batch: list[dict[str, Any]]) -> None:
        insert_rows(self.conn, table, batch)

    def _update(self, table: Table, keys: Sequence[str], batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        stmt = update(table).where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        params = [
            {k: v for k, v in row.items() if k not in keys and k != "created"}
            | {f"k_{k}": row[k] for k in keys}
            for row in batch
        ]
        self.conn.execute(stmt, params)

    def _delete(self, table: Table, keys: Sequence[str], batch: Iterable[Sequence[str]]) -> None:
        params = [{f"k_{k}": v for k, v in zip(keys, ident, strict=True)} for ident in batch]
        if params:
            self.conn.execute(delete(table).where(*(table.c[k] == bindparam(f"k_{k}") for k in keys)), params)

    def _upsert(self, action: Action, table: Table, keys: Sequence[str], batch: list[dict[str, Any]]) -> None:
        """Create inserts; update and replace rewrite the row in place (replace keeps the row's children)."""
        if action is Action.CREATE:
            self._insert(table, batch)
        else:
            self._update(table, keys, batch)

    # -- per kind
    def _pools(self, action: Action, changes: Sequence[Change]) -> None:
        names = [c.key.name for c in changes]
        self.touched_pools.update(names)
        if action is Action.DELETE:
            self._delete(tables.work_pools, ["name"], [[n] for n in names])
            return
        batch = [self._managed(self._pool_values(c), c.after or {}) for c in changes]
        self._upsert(action, tables.work_pools, ["name"], batch)
        if action is Action.CREATE:
            self._insert(
                tables.work_queues, [self._default_queue(n) for n in names if self._needs_default(n)]
            )

    def _needs_default(self, pool: str) -> bool:
        return (
            queue_key(pool, DEFAULT_QUEUE) not in self.declared
            or queue_key(pool, DEFAULT_QUEUE) in self.deleted
        )

    def _default_queue(self, pool: str) -> dict[str, Any]:
        queue = WorkQueue(work_pool=pool, name=DEFAULT_QUEUE, description=DEFAULT_QUEUE_DESCRIPTION)
        # Not declared, so wp records no applied attributes: its priority is never diffed.
        return rows.queue_values(queue, 1) | rows.managed_columns(self.project, None, self.now)

    def _queues(self, action: Action, changes: Sequence[Change]) -> None:
        self.touched_pools.update(c.key.name.split("/", 1)[0] for c in changes)
        idents = [c.key.name.split("/", 1) for c in changes]
        if action is Action.DELETE:
            for (pool, name), change in zip(idents, changes, strict=True):
                if name == DEFAULT_QUEUE and pool_key(pool) not in self.deleted:
                    raise ValidationError(
                        f"{change.address}: a pool's default queue cannot be deleted; "
                        "delete the pool instead",
                        path=[change.address],
                    )
            self._delete(tables.work_queues, ["work_pool", "name"], idents)
            return
        batch = []
        for change in changes:
            values = self._trusted(change, rows.queue_values_of)
            if values is None:
                queue = _model(WorkQueue, change)
                values = rows.queue_values(queue, queue.priority or 0)
            declared = (change.after or {}).get("priority")
            values = self._managed(values, change.after or {})
            if declared is None and action is not Action.CREATE:
                del values["priority"]  # undeclared priority: keep the live one
            batch.append(values)
        self._upsert(action, tables.work_queues, ["work_pool", "name"], batch)
        resumed = [c.key.name.split("/", 1) for c in changes if _resumed(c)]
        if resumed:  # SPEC §1: a resumed queue is NOT_READY until a worker polls it again
            q = tables.work_queues
            for pool, name in resumed:
                self.conn.execute(
                    update(q).where(q.c.work_pool == pool, q.c.name == name).values(last_polled=None)
                )

    def _deployments(self, action: Action, changes: Sequence[Change]) -> None:
        if action is Action.DELETE:
            self._delete(tables.deployments, ["flow", "name"], [c.key.name.split("/", 1) for c in changes])
            return
        batch = [
            self._managed(
                self._trusted(c, rows.deployment_values_of) or rows.deployment_values(_model(Deployment, c)),
                c.after or {},
            )
            for c in changes
        ]
        self._upsert(action, tables.deployments, ["flow", "name"], batch)

    def _schedules(self, action: Action, changes: Sequence[Change]) -> None:
        idents = []
        for change in changes:
            deployment, _, slug = change.key.name.partition("#")
            flow, _, name = deployment.partition("/")
            idents.append((flow, name, slug))
        if action is not Action.CREATE:
            self._drop_future_runs(idents)
        if action is Action.DELETE:
            self._delete(tables.deployment_schedules, ["flow", "name", "slug"], idents)
            return
        batch = [
            self._managed(
                self._trusted(c, partial(rows.schedule_values_of, flow, name))
                or rows.schedule_values(flow, name, _model(Schedule, c)),
                c.after or {},
            )
            for (flow, name, _), c in zip(idents, changes, strict=True)
        ]
        self._upsert(action, tables.deployment_schedules, ["flow", "name", "slug"], batch)

    def _drop_future_runs(self, idents: Sequence[tuple[str, str, str]]) -> None:
        """Runs a changed or removed schedule made and nobody claimed yet go; the scheduler makes the new ones.
        Schedules the plan does not touch keep every run."""
        slugs: dict[str, list[str]] = {}
        for flow, name, slug in idents:
            slugs.setdefault(f"{flow}/{name}", []).append(slug)
        for deployment, names in slugs.items():
            delete_scheduled_runs_in(self.conn, deployment, names, self.now)

    # -- priorities
    def _settle_queue_priorities(self) -> None:
        """Queues created without a priority (written as 0), and an undeclared default queue that now
        collides, take the first free priority after the highest; any other colliding queue shifts down to
        a gap."""
        if not self.touched_pools:
            return
        q = tables.work_queues
        current: dict[str, dict[str, int]] = defaultdict(dict)
        selected = select(q.c.work_pool, q.c.name, q.c.priority).where(
            q.c.work_pool.in_(sorted(self.touched_pools))
        )
        for pool, name, priority in self.conn.execute(selected):
            current[pool][name] = priority
        updates = [
            {"k_work_pool": pool, "k_name": name, "priority": priority}
            for pool, queues in current.items()
            for name, priority in settle_priorities(queues, self._fixed_priorities(pool, queues)).items()
        ]
        if updates:
            stmt = update(q).where(q.c.work_pool == bindparam("k_work_pool"), q.c.name == bindparam("k_name"))
            self.conn.execute(stmt, updates)

    def _fixed_priorities(self, pool: str, queues: Mapping[str, int]) -> dict[str, int]:
        """The priorities this plan decides: declared ones, then first free ones for queues that need one."""
        fixed = {name: queues[name] for name in queues if self.declared_priority.get(queue_key(pool, name))}
        default_collides = queue_key(pool, DEFAULT_QUEUE) not in self.declared_priority and queues.get(
            DEFAULT_QUEUE
        ) in set(fixed.values())
        floating = sorted(
            (
                n
                for n in queues
                if n not in fixed and (queues[n] == 0 or (n == DEFAULT_QUEUE and default_collides))
            ),
            key=lambda n: (queues[n] == 0, queues[n], n),
        )
        taken = [p for n, p in queues.items() if n not in floating]
        for name in floating:
            fixed[name] = next_free_priority([*taken, *fixed.values()])
        return fixed
