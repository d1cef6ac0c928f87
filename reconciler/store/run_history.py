"""A run's state history in SQL: the rows of `flow_run_states`.

Owns how a state change is recorded (one row: run, from, to, time, message, actor) and read back. Every writer of
a run's state (`runs.py`, the recovery in `workers.py`) calls `record` inside the transaction that changes the
state, so the history never misses a change nor records one that was rolled back. Must never decide whether a
change is allowed: that is `states.transition`, called by the writer before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from reconciler.model import RunStateChange
from reconciler.store.tables import flow_run_states

# Actors the store itself names, for changes no client asked for.
SCHEDULER = "scheduler"
RECOVERY = "dead-worker recovery"


def worker_actor(worker: str) -> str:
    return f"worker {worker}"


def change(
    run_id: str,
    from_state: str | None,
    to_state: str,
    now: datetime,
    *,
    message: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One row of `flow_run_states`."""
    return {
        "run_id": run_id,
        "from_state": from_state,
        "to_state": to_state,
        "timestamp": now,
        "message": message,
        "actor": actor,
    }


def record(conn: Connection, changes: Iterable[dict[str, Any]]) -> None:
    """Write state changes in the caller's transaction (one executemany)."""
    rows = list(changes)
    if rows:
        conn.execute(insert(flow_run_states), rows)


def read(conn: Connection, run_id: str) -> list[RunStateChange]:
    """The run's changes, oldest first (ids grow with time within a run, even when timestamps tie)."""
    c = flow_run_states.c
    query = (
        select(c.run_id, c.from_state, c.to_state, c.timestamp, c.message, c.actor)
        .where(c.run_id == run_id)
        .order_by(c.id)
    )
    return [RunStateChange.model_validate(dict(r)) for r in conn.execute(query).mappings()]
