"""The flow-run logs part of SqlStore: storing a run's log lines and reading them back (SPEC §5).

Owns the queries on `flow_run_logs`: lines are numbered per run (`seq`) by the store, never by the caller,
with the run's row locked on PostgreSQL so concurrent writers of one run's log never collide.

Must never change a run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, insert, select

from reconciler.errors import NotFoundError
from reconciler.model import LogLine
from reconciler.store.connection import SqlEngine
from reconciler.store.tables import flow_run_logs, flow_runs


class SqlLogs(SqlEngine):
    """Mixin of SqlStore: flow-run logs."""

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store log lines in the order given; the store numbers them per run (`seq`), not the caller."""
        by_run: dict[str, list[LogLine]] = {}
        for line in lines:
            by_run.setdefault(line.run_id, []).append(line)
        if not by_run:
            return
        with self.transaction() as conn:
            for run_id, run_lines in by_run.items():
                self._append_run_logs(conn, run_id, run_lines)

    def _append_run_logs(self, conn: Connection, run_id: str, lines: list[LogLine]) -> None:
        query = select(flow_runs.c.id).where(flow_runs.c.id == run_id)
        # Locking the run row serializes writers of one run's log, so their sequence numbers never collide.
        if conn.execute(query.with_for_update() if self._locks_rows else query).first() is None:
            raise NotFoundError(f"flow run {run_id!r} not found; cannot store its logs")
        last = conn.execute(
            select(func.max(flow_run_logs.c.seq)).where(flow_run_logs.c.run_id == run_id)
        ).scalar()
        start = -1 if last is None else int(last)
        rows = [
            {
                "run_id": run_id,
                "seq": start + i,
                "timestamp": ln.timestamp,
                "stream": ln.stream,
                "message": ln.message,
            }
            for i, ln in enumerate(lines, start=1)
        ]
        conn.execute(insert(flow_run_logs), rows)

    def read_logs(
        self, run_id: str, *, after_seq: int = -1, limit: int = 1000, prefix: str | None = None
    ) -> list[LogLine]:
        query = (
            select(flow_run_logs)
            .where(flow_run_logs.c.run_id == run_id, flow_run_logs.c.seq > after_seq)
            .order_by(flow_run_logs.c.seq)
            .limit(max(0, limit))
        )
        # substr, not LIKE: no wildcards to escape, and case-sensitive on both databases
        if prefix is not None:
            query = query.where(
                flow_run_logs.c.stream == "stdout",
                func.substr(flow_run_logs.c.message, 1, len(prefix)) == prefix,
            )
        with self.reading() as conn:
            return [LogLine.model_validate(dict(r)) for r in conn.execute(query).mappings()]
