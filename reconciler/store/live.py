"""Reading declared objects as LiveObjects: the snapshot of the store, whole or by key.

Owns the few-query read (one query per table, never one per object), how a row becomes a LiveObject with its
fingerprint, and the sharing of equal pool templates. Must never write: the writers are `objects.py` (plans),
`crud.py` (commands) and `settings.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, Text, and_, cast, or_, select, type_coerce

from reconciler.collector import collector_paused
from reconciler.model import (
    Key,
    Kind,
    Schedule,
    WorkPool,
    attributes,
    canonical_json,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)
from reconciler.store import rows, tables
from reconciler.store.base import LiveObject
from reconciler.store.settings import read_protected


def _live(key: Key, value: Any, row: rows.Row, print_: str, status: str | None = None) -> LiveObject:
    attrs = attributes(value)
    # A pool's attributes are not carried: they hold a private copy of the template the snapshot otherwise
    # shares between pools, and pools are few.
    carried = None if isinstance(value, WorkPool) else attrs
    return LiveObject(key, value, row["owner"], print_, row["applied"], status, attrs=carried)


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
