"""Imperative CRUD on declared objects (the `wp work-pool` / `wp work-queue` / `wp deployment` commands).

Owns `SqlObjects`: create/update/delete/get/list of pools, queues and deployments, pool and queue status, the
default pool setting, and the queue priority rules when one queue is created or moved. Objects made here have
owner None unless one is given, and no applied attributes. Must never write a plan: `objects.py` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import pydantic
from sqlalchemy import Connection, delete, insert, select, update

from reconciler.errors import ConflictError, NotFoundError, ValidationError
from reconciler.model import (
    DEFAULT_QUEUE,
    Deployment,
    Schedule,
    WorkPool,
    WorkQueue,
    deployment_key,
    pool_key,
    queue_key,
)
from reconciler.store import integrity, rows, tables
from reconciler.store.connection import SqlEngine
from reconciler.store.live import online_pools
from reconciler.store.objects import DEFAULT_QUEUE_DESCRIPTION
from reconciler.store.priorities import next_free_priority, settle_priorities
from reconciler.store.settings import forget_deleted, read_default_pool, record_deleted

M = TypeVar("M", bound=pydantic.BaseModel)
_P, _Q, _D, _S = tables.work_pools, tables.work_queues, tables.deployments, tables.deployment_schedules


def _changed(model: type[M], current: M, fields: Mapping[str, Any], fixed: tuple[str, ...], what: str) -> M:
    """`current` with `fields` changed, validated; a ValidationError names an unknown or bad field."""
    allowed = sorted(set(model.model_fields) - set(fixed))
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValidationError(
            f"{what}: cannot update {', '.join(unknown)}; updatable fields: {', '.join(allowed)}",
            path=unknown,
        )
    try:
        return model.model_validate(current.model_dump() | dict(fields))
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        loc = [str(p) for p in first["loc"]]
        raise ValidationError(f"{what}: {'.'.join(loc)}: {first['msg']}", path=loc) from None


def _pool_row(conn: Connection, name: str) -> rows.Row:
    row = conn.execute(select(_P).where(_P.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"work pool {name!r} does not exist; `wp work-pool ls` lists the pools")
    return row


def _queue_row(conn: Connection, pool: str, name: str) -> rows.Row:
    _pool_row(conn, pool)
    row = conn.execute(select(_Q).where(_Q.c.work_pool == pool, _Q.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"work queue {name!r} does not exist in work pool {pool!r}")
    return row


def _deployment_row(conn: Connection, flow: str, name: str) -> rows.Row:
    row = conn.execute(select(_D).where(_D.c.flow == flow, _D.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"deployment {flow}/{name} does not exist; `wp deployment ls` lists the deployments"
        )
    return row


def _schedules(conn: Connection, flow: str, name: str) -> list[Schedule]:
    query = select(_S).where(_S.c.flow == flow, _S.c.name == name).order_by(_S.c.slug)
    return [rows.schedule_from_row(r) for r in conn.execute(query).mappings()]


def _pool_priorities(conn: Connection, pool: str) -> dict[str, int]:
    result = conn.execute(select(_Q.c.name, _Q.c.priority).where(_Q.c.work_pool == pool))
    return {name: priority for name, priority in result}


def _write_priorities(conn: Connection, pool: str, changes: Mapping[str, int]) -> None:
    for name, priority in changes.items():
        conn.execute(update(_Q).where(_Q.c.work_pool == pool, _Q.c.name == name).values(priority=priority))


class SqlObjects(SqlEngine):
    """The imperative half of the declared-object protocol."""

    # ------------------------------------------------------------------------------------------- pools
    def create_work_pool(
        self, pool: WorkPool, *, owner: str | None = None, overwrite: bool = False
    ) -> WorkPool:
        now = datetime.now(UTC)
        with self.transaction() as conn:
            exists = conn.execute(select(_P.c.name).where(_P.c.name == pool.name)).first() is not None
            if exists and not overwrite:
                raise ConflictError(f"work pool {pool.name!r} already exists; pass --overwrite to replace it")
            if exists:
                values = rows.pool_values(pool) | {"updated": now}
                conn.execute(update(_P).where(_P.c.name == pool.name).values(values))
                return pool
            conn.execute(insert(_P), rows.pool_values(pool) | rows.managed_columns(owner, None, now))
            default = WorkQueue(
                work_pool=pool.name, name=DEFAULT_QUEUE, description=DEFAULT_QUEUE_DESCRIPTION
            )
            conn.execute(insert(_Q), rows.queue_values(default, 1) | rows.managed_columns(owner, None, now))
            forget_deleted(conn, [pool_key(pool.name).address, queue_key(pool.name, DEFAULT_QUEUE).address])
        return pool

    def update_work_pool(self, name: str, **fields: Any) -> WorkPool:
        with self.transaction() as conn:
            current = rows.pool_from_row(_pool_row(conn, name))
            pool = _changed(WorkPool, current, fields, ("name", "type"), f"work pool {name!r}")
            values = rows.pool_values(pool) | {"updated": datetime.now(UTC)}
            conn.execute(update(_P).where(_P.c.name == name).values(values))
        return pool

    def delete_work_pool(self, name: str, *, cascade: bool = False) -> None:
        with self.transaction() as conn:
            integrity.lock_for_delete(conn, name)
            pool = _pool_row(conn, name)
            queues = conn.execute(select(_Q).where(_Q.c.work_pool == name)).mappings().all()
            scope = integrity.Scope(
                pool_key(name).address,
                pool=name,
                deployments=tuple(integrity.users(conn, name)),
                extra_addresses=tuple(queue_key(name, q["name"]).address for q in queues),
            )
            integrity.check_deletable(conn, scope, cascade=cascade, what="work pool")
            integrity.delete_scope(conn, scope)
            record_deleted(conn, [(pool_key(name), pool), *((queue_key(name, q["name"]), q) for q in queues)])
            conn.execute(delete(_P).where(_P.c.name == name))  # queues and workers cascade
            if read_default_pool(conn) == name:
                conn.execute(delete(tables.settings).where(tables.settings.c.key == "default_pool"))

    def get_work_pool(self, name: str) -> WorkPool:
        with self.reading() as conn:
            return rows.pool_from_row(_pool_row(conn, name))

    def list_work_pools(self) -> list[WorkPool]:
        with self.reading() as conn:
            return [rows.pool_from_row(r) for r in conn.execute(select(_P).order_by(_P.c.name)).mappings()]

    def work_pool_status(self, name: str, now: datetime) -> str:
        with self.reading() as conn:
            row = _pool_row(conn, name)
            return rows.pool_status(row["paused"], name in online_pools(conn, now))

    def set_default_work_pool(self, name: str | None) -> None:
        with self.transaction() as conn:
            if name is not None:
                _pool_row(conn, name)
            conn.execute(delete(tables.settings).where(tables.settings.c.key == "default_pool"))
            if name is not None:
                conn.execute(insert(tables.settings), {"key": "default_pool", "value": name})

    def get_default_work_pool(self) -> str | None:
        with self.reading() as conn:
            return read_default_pool(conn)

    # ------------------------------------------------------------------------------------------- queues
    def create_work_queue(self, queue: WorkQueue, *, owner: str | None = None) -> WorkQueue:
        with self.transaction() as conn:
            _pool_row(conn, queue.work_pool)
            current = _pool_priorities(conn, queue.work_pool)
            if queue.name in current:
                raise ConflictError(
                    f"work queue {queue.name!r} already exists in work pool {queue.work_pool!r}"
                )
            priority = queue.priority or next_free_priority(current.values())
            _write_priorities(conn, queue.work_pool, settle_priorities(current, {queue.name: priority}))
            values = rows.queue_values(queue, priority)
            conn.execute(insert(_Q), values | rows.managed_columns(owner, None, datetime.now(UTC)))
            forget_deleted(conn, [queue_key(queue.work_pool, queue.name).address])
        return queue.model_copy(update={"priority": priority})

    def update_work_queue(self, pool: str, name: str, **fields: Any) -> WorkQueue:
        with self.transaction() as conn:
            current = rows.queue_from_row(_queue_row(conn, pool, name))
            queue = _changed(WorkQueue, current, fields, ("work_pool", "name"), f"work queue {pool}/{name}")
            priority = queue.priority or current.priority or 1
            moved = settle_priorities(_pool_priorities(conn, pool), {name: priority})
            _write_priorities(conn, pool, moved)
            values = rows.queue_values(queue, priority) | {"updated": datetime.now(UTC)}
            if current.paused and not queue.paused:
                values["last_polled"] = None  # SPEC §1: NOT_READY until a worker polls it again
            conn.execute(update(_Q).where(_Q.c.work_pool == pool, _Q.c.name == name).values(values))
        return queue.model_copy(update={"priority": priority})

    def delete_work_queue(self, pool: str, name: str, *, cascade: bool = False) -> None:
        if name == DEFAULT_QUEUE:
            raise ValidationError(
                f"work queue {pool}/{name}: a pool's default queue cannot be deleted; "
                "delete the pool instead",
                path=["name"],
            )
        with self.transaction() as conn:
            integrity.lock_for_delete(conn, pool, name)
            row = _queue_row(conn, pool, name)
            scope = integrity.Scope(
                queue_key(pool, name).address,
                pool=pool,
                queue=name,
                deployments=tuple(integrity.users(conn, pool, name)),
            )
            integrity.check_deletable(conn, scope, cascade=cascade, what="work queue")
            integrity.delete_scope(conn, scope)
            record_deleted(conn, [(queue_key(pool, name), row)])
            conn.execute(delete(_Q).where(_Q.c.work_pool == pool, _Q.c.name == name))  # gaps are kept

    def get_work_queue(self, pool: str, name: str) -> WorkQueue:
        with self.reading() as conn:
            return rows.queue_from_row(_queue_row(conn, pool, name))

    def list_work_queues(self, pool: str) -> list[WorkQueue]:
        with self.reading() as conn:
            _pool_row(conn, pool)
            query = select(_Q).where(_Q.c.work_pool == pool).order_by(_Q.c.priority, _Q.c.name)
            return [rows.queue_from_row(r) for r in conn.execute(query).mappings()]

    def work_queue_status(self, pool: str, name: str, now: datetime) -> str:
        with self.reading() as conn:
            row = _queue_row(conn, pool, name)
        return rows.queue_status(row["paused"], row["last_polled"], now)

    # ------------------------------------------------------------------------------------------- deployments
    def get_deployment(self, flow: str, name: str) -> Deployment:
        with self.reading() as conn:
            return rows.deployment_from_row(_deployment_row(conn, flow, name), _schedules(conn, flow, name))

    def list_deployments(self, work_pool: str | None = None) -> list[Deployment]:
        query = select(_D).order_by(_D.c.flow, _D.c.name)
        schedules = select(_S).order_by(_S.c.slug)
        if work_pool is not None:
            query = query.where(_D.c.work_pool == work_pool)
        with self.reading() as conn:
            by_deployment: dict[tuple[str, str], list[Schedule]] = {}
            for r in conn.execute(schedules).mappings():
                by_deployment.setdefault((r["flow"], r["name"]), []).append(rows.schedule_from_row(r))
            return [
                rows.deployment_from_row(r, by_deployment.get((r["flow"], r["name"]), ()))
                for r in conn.execute(query).mappings()
            ]

    def update_deployment(self, flow: str, name: str, **fields: Any) -> Deployment:
        now = datetime.now(UTC)
        with self.transaction() as conn:
            current = rows.deployment_from_row(
                _deployment_row(conn, flow, name), _schedules(conn, flow, name)
            )
            deployment = _changed(Deployment, current, fields, ("flow", "name"), f"deployment {flow}/{name}")
            values = rows.deployment_values(deployment) | {"updated": now}
            conn.execute(update(_D).where(_D.c.flow == flow, _D.c.name == name).values(values))
            if {"work_pool", "work_queue"} & set(fields):
                integrity.check_references(conn, [(flow, name)])
            if "schedules" in fields:
                conn.execute(delete(_S).where(_S.c.flow == flow, _S.c.name == name))
                batch = [
                    rows.schedule_values(flow, name, s) | rows.managed_columns(None, None, now)
                    for s in deployment.schedules
                ]
                if batch:
                    conn.execute(insert(_S), batch)
        return deployment

    def delete_deployment(self, flow: str, name: str) -> None:
        with self.transaction() as conn:
            _deployment_row(conn, flow, name)
            scope = integrity.Scope(deployment_key(flow, name).address, deployments=((flow, name),))
            integrity.check_deletable(conn, scope, cascade=True, what="deployment")
            integrity.delete_scope(conn, scope)  # the deployment (remembered if managed), schedules cascade
