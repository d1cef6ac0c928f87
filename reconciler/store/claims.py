"""The claim: how a worker's poll hands out due runs, atomically, within every limit.

Owns `claim_runs`: one transaction that locks the pool (PostgreSQL: the pool row `FOR UPDATE`, candidate runs
`FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN IMMEDIATE` serializes writers), counts slot holders, walks the queues by
priority (SPEC §1's waterfall) and moves the runs it hands out to PENDING, writing each one's history row. Split
from `runs.py`, whose helpers it shares. Must never change a run's state other than to PENDING.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select, update

from reconciler.errors import NotFoundError
from reconciler.model import FlowRun
from reconciler.states import RunState
from reconciler.store import run_history
from reconciler.store.connection import SqlEngine
from reconciler.store.runs import CLAIMABLE, MAX_PAGE, SLOT, Row, run_from_row, split_deployment
from reconciler.store.tables import deployments, flow_runs, work_pools
from reconciler.store.tables import work_queues as queue_table

_PICK_COLUMNS = (
    flow_runs.c.id,
    flow_runs.c.deployment,
    flow_runs.c.work_queue,
    flow_runs.c.state,
    flow_runs.c.expected_start_time,
)


class _ClaimLimits:
    """Free slots while one claim walks its pool: pool, per queue, per deployment (counted inside the claim's
    transaction, so they are exact for as long as it holds its locks)."""

    def __init__(
        self, conn: Connection, pool: str, pool_limit: int | None, queues: Sequence[str], lock_rows: bool
    ) -> None:
        self.conn = conn
        self.lock_rows = lock_rows
        c = flow_runs.c
        # Two queries shaped so each is an index range over slot holders only (not over every run of the pool).
        held = conn.execute(select(func.count()).where(c.work_pool == pool, c.state.in_(SLOT))).scalar_one()
        rows = conn.execute(
            select(c.work_queue, func.count())
            .where(c.work_pool == pool, c.work_queue.in_(list(queues)), c.state.in_(SLOT))
            .group_by(c.work_queue)
        ).all()
        self.queue_held: Counter[str] = Counter({q: n for q, n in rows})
        self.pool_free = math.inf if pool_limit is None else max(0, pool_limit - held)
        self.deployment_limit: dict[str, int | None] = {}
        self.deployment_held: Counter[str] = Counter()

    def queue_free(self, queue: str, limit: int | None) -> float:
        return math.inf if limit is None else max(0, limit - self.queue_held[queue])

    def deployment_allows(self, deployment: str) -> bool:
        if deployment not in self.deployment_limit:
            self.load_deployments([deployment])
        limit = self.deployment_limit[deployment]
        return limit is None or self.deployment_held[deployment] < limit

    def load_deployments(self, names: Iterable[str]) -> None:
        """The limits of the deployments not seen yet, and the slot holders of those that have one: one query
        for a page of candidates (and one more if any is limited), not one or two per deployment."""
        wanted = sorted(set(names) - self.deployment_limit.keys())
        if not wanted:
            return
        d = deployments.c
        pairs = [split_deployment(name) for name in wanted]
        query = (
            select(d.flow, d.name, d.concurrency_limit)
            .where(or_(*(and_(d.flow == flow, d.name == name) for flow, name in pairs)))
            .order_by(d.flow, d.name)  # PostgreSQL locks them in this order: claims never lock crosswise
        )
        if self.lock_rows:
            # A deployment's runs may sit in several pools: its row lock serializes claims that count them.
            query = query.with_for_update()
        found = {f"{flow}/{name}": limit for flow, name, limit in self.conn.execute(query)}
        limited = [name for name in wanted if found.get(name) is not None]
        for name in wanted:
            self.deployment_limit[name] = found.get(name)
        if limited:
            c = flow_runs.c
            held = self.conn.execute(
                select(c.deployment, func.count())
                .where(c.deployment.in_(limited), c.state.in_(SLOT))
                .group_by(c.deployment)
            )
            self.deployment_held.update({name: count for name, count in held})

    def take(self, run: Row) -> None:
        self.queue_held[run["work_queue"]] += 1
        self.deployment_held[run["deployment"]] += 1
        self.pool_free -= 1


class SqlClaims(SqlEngine):
    """Mixin of SqlStore: `claim_runs` of the Store protocol."""

    def claim_runs(
        self,
        work_pool: str,
        worker: str,
        *,
        limit: int,
        scheduled_before: datetime,
        now: datetime,
        work_queues: Sequence[str] = (),
    ) -> list[FlowRun]:
        with self.transaction() as conn:
            pool_query = select(work_pools.c.paused, work_pools.c.concurrency_limit).where(
                work_pools.c.name == work_pool
            )
            # The pool row lock makes every claim on this pool count slot holders one after the other.
            pool = conn.execute(pool_query.with_for_update() if self._locks_rows else pool_query).first()
            if pool is None:
                raise NotFoundError(f"work pool {work_pool!r} not found; `wp work-pool ls` lists the pools")
            queues = self._polled_queues(conn, work_pool, work_queues)
            conn.execute(
                update(queue_table)
                .where(
                    queue_table.c.work_pool == work_pool, queue_table.c.name.in_([q["name"] for q in queues])
                )
                .values(last_polled=now)
            )
            if pool.paused or limit <= 0:
                return []
            limits = _ClaimLimits(
                conn, work_pool, pool.concurrency_limit, [q["name"] for q in queues], self._locks_rows
            )
            picked: list[Row] = []
            for queue in queues:
                room = min(limit - len(picked), limits.pool_free)
                if room <= 0:
                    break
                if queue["paused"]:
                    continue
                room = min(room, limits.queue_free(queue["name"], queue["concurrency_limit"]))
                if room > 0:
                    picked.extend(
                        self._pick(conn, work_pool, queue["name"], int(room), scheduled_before, limits)
                    )
            return self._mark_pending(conn, picked, worker, now)

    def _polled_queues(self, conn: Connection, pool: str, names: Sequence[str]) -> list[Row]:
        rows: list[Row] = list(
            conn.execute(
                select(queue_table.c.name, queue_table.c.paused, queue_table.c.concurrency_limit)
                .where(queue_table.c.work_pool == pool)
                .order_by(queue_table.c.priority, queue_table.c.name)
            ).mappings()
        )
        if not names:
            return rows
        known = {r["name"] for r in rows}
        unknown = sorted(set(names) - known)
        if unknown:
            raise NotFoundError(
                f"work queue {', '.join(unknown)} not found in pool {pool!r}; "
                f"its queues are: {', '.join(sorted(known))}"
            )
        return [r for r in rows if r["name"] in set(names)]

    def _pick(
        self, conn: Connection, pool: str, queue: str, room: int, before: datetime, limits: _ClaimLimits
    ) -> list[Row]:
        """Up to `room` due runs of one queue, oldest first, skipping runs of deployments at their limit."""
        page = min(MAX_PAGE, max(2 * room, 32))
        streams = [self._due(conn, pool, queue, state, before, page, limits) for state in CLAIMABLE]
        taken: list[Row] = []
        for run in heapq.merge(*streams, key=lambda r: (r["expected_start_time"], r["id"])):
            if len(taken) >= room:
                break
            if limits.deployment_allows(run["deployment"]):
                limits.take(run)
                taken.append(run)
        return taken

    def _due(
        self,
        conn: Connection,
        pool: str,
        queue: str,
        state: str,
        before: datetime,
        page: int,
        limits: _ClaimLimits,
    ) -> Iterator[Row]:
        """Due runs of one queue in one state, in (expected_start_time, id) order, read page by page so that a
        claim reads about as many rows as it hands out (index ix_flow_runs_pool_queue_state)."""
        c = flow_runs.c
        after: tuple[datetime, str] | None = None
        while True:
            # Only what picking needs: a page holds more candidates than are taken, and decoding every column
            # (JSON parameters, datetimes) of each was a fifth of a claim. The taken runs come back whole from
            # the UPDATE that claims them.
            query: Select[Any] = select(*_PICK_COLUMNS).where(
                c.work_pool == pool, c.work_queue == queue, c.state == state, c.expected_start_time <= before
            )
            if after is not None:
                query = query.where(
                    c.expected_start_time >= after[0],
                    or_(
                        c.expected_start_time > after[0],
                        and_(c.expected_start_time == after[0], c.id > after[1]),
                    ),
                )
            query = query.order_by(c.expected_start_time, c.id).limit(page)
            if self._locks_rows:
                query = query.with_for_update(skip_locked=True)
            rows: list[Row] = list(conn.execute(query).mappings())
            limits.load_deployments(r["deployment"] for r in rows)
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1]["expected_start_time"], rows[-1]["id"])

    def _mark_pending(self, conn: Connection, picked: list[Row], worker: str, now: datetime) -> list[FlowRun]:
        if not picked:
            return []
        values = {"state": RunState.PENDING.value, "worker": worker, "updated": now, "state_message": None}
        ids = [r["id"] for r in picked]
        # `state || ''`, not `state`: SQLite's planner, which has no statistics, would otherwise serve this UPDATE
        # from the index on state and walk every SCHEDULED run of the store instead of the handful of ids
        # (measured: 5.4 ms of a 11.6 ms claim at 12,000 runs); the ids are the primary key.
        still_claimable = flow_runs.c.state.concat("").in_(CLAIMABLE)
        claim = update(flow_runs).where(flow_runs.c.id.in_(ids), still_claimable).values(values)
        if conn.dialect.update_returning:  # SQLite >= 3.35, PostgreSQL: the claimed rows, whole, in one trip
            rows = {r["id"]: r for r in conn.execute(claim.returning(*flow_runs.c)).mappings()}
        else:
            conn.execute(claim)
            query = select(flow_runs).where(flow_runs.c.id.in_(ids), flow_runs.c.worker == worker)
            rows = {r["id"]: r for r in conn.execute(query).mappings()}
        # the claim's locks (SQLite's write lock, PostgreSQL's row locks) leave every picked run claimable; a
        # run the UPDATE did not take would be left out rather than handed out twice
        taken = [r for r in picked if r["id"] in rows]
        actor = run_history.worker_actor(worker)
        run_history.record(
            conn,
            (
                run_history.change(r["id"], r["state"], RunState.PENDING.value, now, actor=actor)
                for r in taken
            ),
        )
        return [run_from_row(rows[r["id"]]) for r in taken]
