"""Whole-store counts for the `/metrics` endpoint, in SQL: runs by pool, queue and state; workers by pool.

Owns `SqlCounts`: two grouped queries, so a scrape costs the same whatever the number of pools. Must never
format metrics (api/metrics.py does) or change anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from reconciler.store import tables
from reconciler.store.connection import SqlEngine
from reconciler.store.rows import worker_online


class SqlCounts(SqlEngine):
    """Counting methods of SqlStore (not part of the Store protocol: a server always serves a SqlStore)."""

    def count_runs_grouped(self) -> dict[tuple[str, str, str], int]:
        """{(work_pool, work_queue, state): number of runs}."""
        r = tables.flow_runs
        query = select(r.c.work_pool, r.c.work_queue, r.c.state, func.count()).group_by(
            r.c.work_pool, r.c.work_queue, r.c.state
        )
        with self.reading() as conn:
            return {(pool, queue, state): int(n) for pool, queue, state, n in conn.execute(query)}

    def count_workers_online(self, now: datetime) -> dict[str, int]:
        """{work_pool: workers online}, every pool with a worker ever seen."""
        w = tables.workers
        out: dict[str, int] = {}
        with self.reading() as conn:
            for pool, beat, interval in conn.execute(
                select(w.c.work_pool, w.c.last_heartbeat, w.c.heartbeat_interval)
            ):
                out[pool] = out.get(pool, 0) + int(worker_online(beat, interval, now))
        return out

    def concurrency_limits(self) -> tuple[dict[str, int | None], dict[tuple[str, str], int | None]]:
        """({pool: limit}, {(pool, queue): limit}) of every pool and queue (None: no limit)."""
        p, q = tables.work_pools, tables.work_queues
        with self.reading() as conn:
            pools = {name: limit for name, limit in conn.execute(select(p.c.name, p.c.concurrency_limit))}
            queues = {
                (pool, name): limit
                for pool, name, limit in conn.execute(select(q.c.work_pool, q.c.name, q.c.concurrency_limit))
            }
        return pools, queues
