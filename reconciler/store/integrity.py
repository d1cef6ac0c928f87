"""Referential integrity of the declared objects and their runs, as every store enforces it.

Owns the rules that keep references whole, whichever client writes (CLI, API, provider, plan): a deployment
names a pool and queue that exist; a waiting run (SCHEDULED, LATE) names a pool and queue that exist; a pool or
queue is deleted only when no deployment uses it (or with `cascade`, which deletes those deployments too), never
while runs are in flight in it, and never when a project protects it. Finished runs stay as history.

Deployments refer to pools by name rather than by a foreign key (a plan may write them in any order within its
transaction), so the rules are checked here, inside the caller's transaction, after its writes. On PostgreSQL
the pool and queue rows are locked (FOR SHARE by a writer that refers to them, FOR UPDATE by a delete) so that
two concurrent transactions cannot together leave a dangling reference; SQLite serializes writers anyway.
Must never commit or open transactions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, tuple_

from reconciler.engine.plan import Action, Plan
from reconciler.errors import ConflictError, ValidationError
from reconciler.model import DEFAULT_QUEUE, Kind, deployment_key, pool_key, queue_key, schedule_key
from reconciler.states import SLOT_STATES, RunState
from reconciler.store import tables
from reconciler.store.settings import read_protected, record_deleted

_P, _Q, _D, _S, _R = (
    tables.work_pools,
    tables.work_queues,
    tables.deployments,
    tables.deployment_schedules,
    tables.flow_runs,
)
WAITING = (RunState.SCHEDULED.value, RunState.LATE.value)
IN_FLIGHT = tuple(sorted(s.value for s in SLOT_STATES))
_LISTED = 10  # names listed in a refusal before "and N more"


@dataclass(frozen=True)
class Scope:
    """The objects one delete takes: a pool, a queue or a deployment, and (with cascade) the deployments in it."""

    address: str
    pool: str | None = None
    queue: str | None = None
    deployments: tuple[tuple[str, str], ...] = ()
    extra_addresses: tuple[str, ...] = field(default_factory=tuple)  # queues going with a pool


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def lock_for_delete(conn: Connection, pool: str, queue: str | None = None) -> None:
    """Hold the pool (or queue) row until commit, so no transaction adds a reference to it meanwhile."""
    if queue is None:
        conn.execute(select(_P.c.name).where(_P.c.name == pool).with_for_update())
    else:
        conn.execute(select(_Q.c.name).where(_Q.c.work_pool == pool, _Q.c.name == queue).with_for_update())


def users(conn: Connection, pool: str, queue: str | None = None) -> list[tuple[str, str]]:
    """(flow, name) of the deployments that send their runs to this pool (or this queue of it)."""
    query = select(_D.c.flow, _D.c.name).where(_D.c.work_pool == pool)
    if queue is not None:
        named = _D.c.work_queue == queue
        query = query.where(or_(named, _D.c.work_queue.is_(None)) if queue == DEFAULT_QUEUE else named)
    return [(f, n) for f, n in conn.execute(query.order_by(_D.c.flow, _D.c.name))]


def _runs_where(scope: Scope) -> ColumnElement[bool]:
    """The runs of `scope`: those in its pool (or queue), and those of the deployments it takes."""
    of_deployments = _R.c.deployment.in_([f"{f}/{n}" for f, n in scope.deployments])
    if scope.pool is None:
        return of_deployments
    placed = _R.c.work_pool == scope.pool
    if scope.queue is not None:
        placed = and_(placed, _R.c.work_queue == scope.queue)
    return or_(placed, of_deployments) if scope.deployments else placed


def check_deletable(conn: Connection, scope: Scope, *, cascade: bool, what: str) -> None:
    """ConflictError unless the objects of `scope` may go: none protected, no user left behind unless
    `cascade`, no run in flight."""
    protected = read_protected(conn)
    addresses = [
        scope.address,
        *scope.extra_addresses,
        *(deployment_key(f, n).address for f, n in scope.deployments),
    ]
    held = [(a, protected[a]) for a in addresses if a in protected]
    if held:
        address, project = held[0]
        raise ConflictError(
            f"{address} is protected: project {project!r} declares it with `protect: true`; set "
            f"`protect: false` on it in that project's config and apply it, then delete it",
            addresses=[a for a, _ in held],
        )
    if scope.deployments and not cascade and (scope.pool is not None):
        listed = [deployment_key(f, n).address for f, n in scope.deployments]
        them = "it" if len(listed) == 1 else "them"
        raise ConflictError(
            f"{scope.address} is used by {_listed(listed)}; move {them} to another {what} or delete {them} "
            f"first, or delete with cascade to delete {them} too (`--cascade`; over the API `?cascade=true`)",
            addresses=listed,
        )
    query = select(_R.c.name, _R.c.state).where(_runs_where(scope), _R.c.state.in_(IN_FLIGHT))
    flying = [f"{name} ({state})" for name, state in conn.execute(query.order_by(_R.c.name))]
    if flying:
        raise ConflictError(
            f"{scope.address} has {len(flying)} run{'s' if len(flying) != 1 else ''} in flight: "
            f"{_listed(flying)}; cancel them (`wp flow-run cancel NAME`) or wait until they finish, then "
            "delete it"
        )


def delete_scope(conn: Connection, scope: Scope) -> int:
    """Delete the deployments of `scope` (remembered if managed) and its waiting runs; return how many runs.
    The caller deletes the pool or queue row itself."""
    runs = conn.execute(delete(_R).where(_runs_where(scope), _R.c.state.in_(WAITING)))
    if scope.deployments:
        idents = list(scope.deployments)
        gone_d = conn.execute(select(_D).where(tuple_(_D.c.flow, _D.c.name).in_(idents))).mappings().all()
        gone_s = conn.execute(select(_S).where(tuple_(_S.c.flow, _S.c.name).in_(idents))).mappings().all()
        record_deleted(
            conn,
            [
                *((deployment_key(r["flow"], r["name"]), r) for r in gone_d),
                *((schedule_key(r["flow"], r["name"], r["slug"]), r) for r in gone_s),
            ],
        )
        conn.execute(delete(_D).where(tuple_(_D.c.flow, _D.c.name).in_(idents)))  # schedules cascade
    return int(runs.rowcount or 0)


# ------------------------------------------------------------------------------------------ references


# Beyond this many deployments, SQLite checks the references of every deployment in one join rather than by keys.
JOINED_CHECK_MIN = 500


def check_references(conn: Connection, deployments: Collection[tuple[str, str]]) -> None:
    """ValidationError naming the first of these deployments whose pool or queue does not exist. Locks the
    rows referred to (FOR SHARE) so a concurrent delete waits for this transaction."""
    if not deployments:
        return
    if conn.dialect.name == "sqlite" and len(deployments) >= JOINED_CHECK_MIN:
        _check_references_joined(conn, deployments)
        return
    idents = sorted(deployments)
    refs = conn.execute(
        select(_D.c.flow, _D.c.name, _D.c.work_pool, _D.c.work_queue).where(
            tuple_(_D.c.flow, _D.c.name).in_(idents)
        )
    ).all()
    pools = sorted({pool for _, _, pool, _ in refs if pool is not None})
    queues = sorted({(pool, q or DEFAULT_QUEUE) for _, _, pool, q in refs if pool is not None})
    found_pools: set[str] = set()
    if pools:
        query_pools = select(_P.c.name).where(_P.c.name.in_(pools))
        found_pools = set(conn.execute(query_pools.with_for_update(read=True)).scalars())
    found_queues: set[tuple[str, str]] = set()
    if queues:
        query = select(_Q.c.work_pool, _Q.c.name).where(tuple_(_Q.c.work_pool, _Q.c.name).in_(queues))
        found_queues = {(p, q) for p, q in conn.execute(query.with_for_update(read=True))}
    for flow, name, pool, queue in refs:
        if pool is None:
            continue
        if pool not in found_pools or (pool, queue or DEFAULT_QUEUE) not in found_queues:
            _dangling(flow, name, pool, queue, pool_exists=pool in found_pools)


def _check_references_joined(conn: Connection, deployments: Collection[tuple[str, str]]) -> None:
    """check_references for many deployments on SQLite (whose writers exclude each other, so nothing is
    locked): the deployments of the store whose pool or queue is missing, in one join, of which only these
    count. Naming 10,000 deployments, their pools and queues by key cost more than writing them."""
    wanted = deployments if isinstance(deployments, set | frozenset) else set(deployments)
    queue = func.coalesce(func.nullif(_D.c.work_queue, ""), DEFAULT_QUEUE)
    joined = _D.outerjoin(_P, _P.c.name == _D.c.work_pool).outerjoin(
        _Q, and_(_Q.c.work_pool == _D.c.work_pool, _Q.c.name == queue)
    )
    query = (
        select(_D.c.flow, _D.c.name, _D.c.work_pool, _D.c.work_queue, _P.c.name)
        .select_from(joined)
        .where(_D.c.work_pool.is_not(None), or_(_P.c.name.is_(None), _Q.c.name.is_(None)))
        .order_by(_D.c.flow, _D.c.name)
    )
    for flow, name, pool, queue_name, found_pool in conn.execute(query):
        if (flow, name) in wanted:
            _dangling(flow, name, pool, queue_name, pool_exists=found_pool is not None)


def _dangling(flow: str, name: str, pool: str, queue: str | None, *, pool_exists: bool) -> None:
    address = deployment_key(flow, name).address
    if not pool_exists:
        raise ValidationError(
            f"{address}: work pool {pool!r} does not exist; `wp work-pool ls` lists the pools",
            path=["work_pool"],
        )
    raise ValidationError(
        f"{address}: work queue {queue!r} does not exist in work pool {pool!r}; "
        f"`wp work-queue ls --pool {pool}` lists its queues",
        path=["work_queue"],
    )


def check_run_target(conn: Connection, pool: str, queue: str, run_name: str) -> None:
    """A new run must name a queue that exists (its pool is checked with its job variables)."""
    query = select(_Q.c.name).where(_Q.c.work_pool == pool, _Q.c.name == queue).with_for_update(read=True)
    if (
        conn.execute(query).first() is None
        and conn.execute(select(_P.c.name).where(_P.c.name == pool)).first()
    ):
        raise ValidationError(
            f"flow run {run_name!r}: work queue {queue!r} does not exist in work pool {pool!r}",
            path=["work_queue"],
        )


def check_plan_deletes(
    conn: Connection, pools: Iterable[str], queues: Iterable[tuple[str, str]], deployments: Iterable[str]
) -> None:
    """After a plan's writes: no kept deployment uses a pool or queue the plan deleted; the waiting runs of
    deleted pools, queues and deployments go with them."""
    pools, queues, deployments = sorted(pools), sorted(queues), sorted(deployments)
    for pool in pools:
        left = users(conn, pool)
        if left:
            listed = [deployment_key(f, n).address for f, n in left]
            raise ConflictError(
                f"{pool_key(pool).address} cannot be deleted: {_listed(listed)} still "
                f"{'uses' if len(listed) == 1 else 'use'} it; move or delete them first",
                addresses=listed,
            )
    for pool, queue in queues:
        left = users(conn, pool, queue)
        if left:
            listed = [deployment_key(f, n).address for f, n in left]
            raise ConflictError(
                f"{queue_key(pool, queue).address} cannot be deleted: {_listed(listed)} still "
                f"{'uses' if len(listed) == 1 else 'use'} it; move or delete them first",
                addresses=listed,
            )
    waiting = _R.c.state.in_(WAITING)
    if pools:
        conn.execute(delete(_R).where(_R.c.work_pool.in_(pools), waiting))
    if queues:
        conn.execute(delete(_R).where(tuple_(_R.c.work_pool, _R.c.work_queue).in_(queues), waiting))
    if deployments:
        conn.execute(delete(_R).where(_R.c.deployment.in_(deployments), waiting))


def check_plan(conn: Connection, plan: Plan) -> None:
    """After a plan's writes, in its transaction: every deployment it wrote names a pool and queue that exist,
    and nothing it kept uses what it deleted (the state after the plan, not before, decides)."""
    written: list[tuple[str, str]] = []
    pools: list[str] = []
    queues: list[tuple[str, str]] = []
    gone: list[str] = []
    for change in plan.actionable:
        kind, name = change.key.kind, change.key.name
        if change.action is Action.DELETE:
            if kind is Kind.WORK_POOL:
                pools.append(name)
            elif kind is Kind.WORK_QUEUE:
                pool, _, queue = name.partition("/")
                queues.append((pool, queue))
            elif kind is Kind.DEPLOYMENT:
                gone.append(name)
        elif kind is Kind.DEPLOYMENT:
            flow, _, deployment = name.partition("/")
            written.append((flow, deployment))
    check_references(conn, written)
    check_plan_deletes(conn, pools, [q for q in queues if q[0] not in pools], gone)
