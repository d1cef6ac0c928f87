"""Declared objects in SQL: read them all as LiveObjects, check a plan is fresh, write a plan's changes.

Owns the few-query snapshot (one query per table, no query per object), the stale-plan check, and the batched
writes of a plan (executemany per run of same-kind, same-action changes), including the pool's `default` queue
and queue-priority settling. Must never commit or open transactions: the caller (SqlStore.apply) owns the one
transaction all of this runs in.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import groupby
from typing import Any, TypeVar

import pydantic
from sqlalchemy import (
    JSON,
    Connection,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    insert,
    or_,
    select,
    type_coerce,
    update,
)

from reconciler.collector import collector_paused
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
    attributes,
    canonical_json,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)
from reconciler.store import rows, tables
from reconciler.store.base import DeletedObject, LiveObject
from reconciler.store.priorities import next_free_priority, settle_priorities
from reconciler.store.runs import delete_scheduled_runs_in

DEFAULT_QUEUE_DESCRIPTION = "The work pool's default queue."
M = TypeVar("M", bound=pydantic.BaseModel)


# --------------------------------------------------------------------------------------------- reading


def _live(key: Key, value: Any, row: rows.Row, print_: str, status: str | None = None) -> LiveObject:
    attrs = attributes(value)
    # A pool's attributes are not carried: they hold a private copy of the template the snapshot otherwise
    # shares between pools, and pools are few.
    carried = None if isinstance(value, WorkPool) else attrs
    return LiveObject(key, value, row["owner"], print_, row["applied"], status, attrs=carried)


PROTECTED_SETTING = "protected"  # settings row: {address: project} of objects applied with `protect: true`
# settings row: {address: {"project": ..., "applied": ...}} of managed objects deleted outside wp
DELETED_SETTING = "deleted_outside"


def read_setting_map(conn: Connection, key: str) -> dict[str, Any]:
    value = conn.execute(select(tables.settings.c.value).where(tables.settings.c.key == key)).scalar()
    return dict(value) if isinstance(value, dict) else {}


def write_setting_map(conn: Connection, key: str, value: Mapping[str, Any]) -> None:
    """Replace a settings row holding a mapping (an empty mapping removes the row)."""
    conn.execute(delete(tables.settings).where(tables.settings.c.key == key))
    if value:
        conn.execute(insert(tables.settings), {"key": key, "value": dict(value)})


def read_protected(conn: Connection) -> dict[str, str]:
    return read_setting_map(conn, PROTECTED_SETTING)


def read_deleted(conn: Connection) -> dict[Key, DeletedObject]:
    out: dict[Key, DeletedObject] = {}
    for address, entry in read_setting_map(conn, DELETED_SETTING).items():
        if isinstance(entry, dict) and isinstance(entry.get("project"), str):
            key = Key.parse(address)
            out[key] = DeletedObject(key, entry["project"], entry.get("applied"))
    return out


def record_deleted(conn: Connection, gone: Iterable[tuple[Key, rows.Row]]) -> None:
    """Remember the managed objects among rows deleted outside a plan (rows made by hand have no owner)."""
    found = {
        key.address: {"project": row["owner"], "applied": row["applied"]}
        for key, row in gone
        if row["owner"] is not None
    }
    if found:
        write_setting_map(conn, DELETED_SETTING, read_setting_map(conn, DELETED_SETTING) | found)


def forget_deleted(conn: Connection, addresses: Iterable[str]) -> None:
    """Objects made again are no longer deleted."""
    deleted = read_setting_map(conn, DELETED_SETTING)
    if not deleted:
        return
    before = len(deleted)
    for address in addresses:
        deleted.pop(address, None)
    if len(deleted) != before:
        write_setting_map(conn, DELETED_SETTING, deleted)


def read_default_pool(conn: Connection) -> str | None:
    value = conn.execute(
        select(tables.settings.c.value).where(tables.settings.c.key == "default_pool")
    ).scalar()
    return value if isinstance(value, str) else None


def online_pools(conn: Connection, now: datetime) -> set[str]:
    w = tables.workers
    result = conn.execute(select(w.c.work_pool, w.c.last_heartbeat, w.c.heartbeat_interval))
    return {pool for pool, beat, interval in result if rows.worker_online(beat, interval, now)}


class _Templates:
    """One object per distinct base job template among the pools read: a thousand pools of one type hold
    the same few hundred JSON values twice each (template and applied attributes), which was most of a
    large snapshot's memory. Read-only sharing: nothing changes a snapshot's values."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def _one(self, template: Any) -> Any:
        try:
            text = canonical_json(template)
        except (TypeError, ValueError):
            return template
        return self._seen.setdefault(text, template)

    def pool_row(self, row: rows.Row) -> dict[str, Any]:
        out = dict(row)
        out["base_job_template"] = self._one(row["base_job_template"])
        applied = row["applied"]
        if isinstance(applied, dict) and "base_job_template" in applied:
            out["applied"] = {**applied, "base_job_template": self._one(applied["base_job_template"])}
        return out


# Columns of a declared object's row that are not its attributes: they neither go into its fingerprint nor
# into its model (`last_polled` changes each time a worker polls; a plan must not go stale for that).
_NOT_ATTRIBUTES = frozenset({"owner", "applied", "created", "updated", "last_polled"})


class _Rows:
    """The rows of one table for read_live: JSON columns read as their stored text and decoded here, so each
    row's fingerprint is a digest of the text the store holds rather than of its values re-encoded (encoding
    25,000 objects' attributes again was a sixth of a large snapshot). The row times are not read: no
    LiveObject holds them, and parsing two timestamps per row was a tenth of a large snapshot."""

    def __init__(self, conn: Connection, table: Table, where: Any = None) -> None:
        postgres = conn.dialect.name == "postgresql"
        columns: list[Any] = []
        self.json: list[str] = []
        for column in table.c:
            if column.name in ("created", "updated"):
                continue
            if _is_json(column.type):
                self.json.append(column.name)
                # SQLite keeps the text; PostgreSQL's jsonb is cast to its (canonical) text
                text = cast(column, Text) if postgres else type_coerce(column, Text)
                columns.append(text.label(column.name))
            else:
                columns.append(column)
        query = select(*columns)
        self.result = conn.execute(query if where is None else query.where(where))
        self.names = list(self.result.keys())
        self.printed = [i for i, name in enumerate(self.names) if name not in _NOT_ATTRIBUTES]

    def __iter__(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Each row as a dict of values, with its fingerprint."""
        names, printed, json_names = self.names, self.printed, self.json
        for raw in self.result:
            row = dict(zip(names, raw, strict=True))
            owner = row["owner"]
            print_ = row_fingerprint([raw[i] for i in printed], owner)
            for name in json_names:
                text = row[name]
                row[name] = None if text is None else _json_value(text)
            yield row, print_


_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _json_value(text: str) -> Any:
    """`json.loads(text)`, calling the C scanner directly for text that starts and ends with its value, as
    both stores write it (json.loads's wrappers and whitespace regexes were half of decoding 75,000 columns)."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the error json.loads words
    return value if end == len(text) else json.loads(text)


def _is_json(type_: Any) -> bool:
    return isinstance(type_, JSON) or isinstance(getattr(type_, "impl", None), JSON)


class _Only:
    """Which rows of each table read_live reads when asked for some objects only (None: every row)."""

    def __init__(self, only: Collection[Key] | None) -> None:
        self.all = only is None
        keys = set(only or ())
        self.keys = keys
        self.pools = sorted(k.name for k in keys if k.kind is Kind.WORK_POOL)
        self.queues = sorted(tuple(k.name.split("/", 1)) for k in keys if k.kind is Kind.WORK_QUEUE)
        deployments = {k for k in keys if k.kind is Kind.DEPLOYMENT}
        # a deployment's value holds its schedules: read them with it (and list only those asked for)
        self.deployments = sorted(tuple(k.name.split("/", 1)) for k in deployments)
        self.schedule_owners = sorted(
            {tuple(k.name.partition("#")[0].split("/", 1)) for k in keys if k.kind is Kind.SCHEDULE}
            | set(self.deployments)
        )

    def where(self, table: Table) -> Any:
        """The WHERE clause for `table`; False when none of its rows is wanted."""
        if self.all:
            return None
        if table is tables.work_pools:
            return table.c.name.in_(self.pools) if self.pools else False
        if table is tables.work_queues:
            return _any_of(table, ("work_pool", "name"), self.queues)
        if table is tables.deployments:
            return _any_of(table, ("flow", "name"), self.deployments)
        return _any_of(table, ("flow", "name"), self.schedule_owners)

    def wants(self, key: Key) -> bool:
        return self.all or key in self.keys


def _any_of(table: Table, columns: Sequence[str], idents: Sequence[Sequence[str]]) -> Any:
    if not idents:
        return False
    return or_(*(and_(*(table.c[c] == v for c, v in zip(columns, ident, strict=True))) for ident in idents))


@collector_paused()  # tens of thousands of rows and models, none in a cycle; see reconciler.collector
def read_live(conn: Connection, now: datetime, only: Collection[Key] | None = None) -> dict[Key, LiveObject]:
    """Every declared object in five queries: pools, workers, queues, deployments, schedules; with `only`,
    just those of these objects that exist, read by key."""
    live: dict[Key, LiveObject] = {}
    wanted = _Only(only)

    def rows_of(table: Table) -> Iterable[tuple[dict[str, Any], str]]:
        where = wanted.where(table)
        return () if where is False else _Rows(conn, table, where)

    online = online_pools(conn, now) if wanted.all or wanted.pools else set()
    shared = _Templates()
    for row, print_ in rows_of(tables.work_pools):
        p = shared.pool_row(row)
        status = rows.pool_status(p["paused"], p["name"] in online)
        live[pool_key(p["name"])] = _live(pool_key(p["name"]), rows.pool_from_row(p), p, print_, status)
    for r, print_ in rows_of(tables.work_queues):
        key = queue_key(r["work_pool"], r["name"])
        status = rows.queue_status(r["paused"], r["last_polled"], now)
        live[key] = _live(key, rows.queue_from_row(r), r, print_, status)
    by_deployment: dict[tuple[str, str], list[Schedule]] = defaultdict(list)
    for r, print_ in rows_of(tables.deployment_schedules):
        schedule = rows.schedule_from_row(r)
        by_deployment[(r["flow"], r["name"])].append(schedule)
        key = schedule_key(r["flow"], r["name"], r["slug"])
        if wanted.wants(key):
            live[key] = _live(key, schedule, r, print_)
    for r, print_ in rows_of(tables.deployments):
        key = deployment_key(r["flow"], r["name"])
        schedules = sorted(by_deployment.get((r["flow"], r["name"]), ()), key=lambda s: s.slug)
        live[key] = _live(key, rows.deployment_from_row(r, schedules), r, print_)
    for address in read_protected(conn):
        key = Key.parse(address)
        if key in live:
            live[key] = replace(live[key], protected=True)
    return live


def row_fingerprint(values: Sequence[Any], owner: str | None) -> str:
    """A short digest of a row's attribute columns (JSON as its stored text) and owner. Equal rows give equal
    fingerprints, and any change to an attribute or the owner gives a new one; it is only ever compared with
    fingerprints read from the same store (the plan's, at apply)."""
    return hashlib.sha256(repr((owner, *values)).encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------------- checking


def check_fresh(plan: Plan, live: Mapping[Key, LiveObject]) -> None:
    """StalePlanError naming each object the plan would change whose live state moved since planning."""
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
        raise StalePlanError(
            f"the plan is stale: {', '.join(stale)}; nothing was applied. Run `wp plan` again and review it.",
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

    def __init__(self, conn: Connection, plan: Plan, now: datetime) -> None:
        self.conn = conn
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
        for (kind, action), group in groupby(self.plan.actionable, key=lambda c: (c.key.kind, c.action)):
            handlers[kind](action, list(group))
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

    # -- generic batched statements
    def _managed(self, values: dict[str, Any], applied: Mapping[str, Any]) -> dict[str, Any]:
        return values | rows.managed_columns(self.project, applied, self.now)

    def _insert(self, table: Table, batch: list[dict[str, Any]]) -> None:
        if batch:
            self.conn.execute(insert(table), batch)

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
        batch = [self._managed(rows.pool_values(_model(WorkPool, c)), c.after or {}) for c in changes]
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
            queue = _model(WorkQueue, change)
            values = self._managed(rows.queue_values(queue, queue.priority or 0), change.after or {})
            if queue.priority is None and action is not Action.CREATE:
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
        batch = [self._managed(rows.deployment_values(_model(Deployment, c)), c.after or {}) for c in changes]
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
            self._managed(rows.schedule_values(flow, name, _model(Schedule, c)), c.after or {})
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
