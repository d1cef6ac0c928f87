"""The store revision and the known no-ops, in SQL.

Owns reading the revision counter (raised by the triggers of migration 0005_revision, never by code), holding it
still for an apply, and the `plan_inputs` rows: `SqlNoops.read_noop` / `save_noop`. Must never decide what a
no-op is or fingerprint anything: reconciler/shortcut.py does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from reconciler.store import tables
from reconciler.store.connection import SqlEngine
from reconciler.store.quick import NoopState

KEEP_NOOPS = 200  # plan_inputs rows kept (one per project directory and flags); older ones are dropped


def read_revision(conn: Connection, *, hold: bool = False) -> int:
    """The revision now. `hold`: lock its row until the transaction ends, so no other writer can raise it
    in between (SQLite's write transactions already exclude each other)."""
    query = select(tables.store_revision.c.revision).where(tables.store_revision.c.id == 1)
    if hold and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


class SqlNoops(SqlEngine):
    def read_noop(self, key: str) -> NoopState:
        t = tables.plan_inputs
        with self.reading() as conn:
            revision = read_revision(conn)
            row = conn.execute(select(t.c.revision, t.c.record).where(t.c.key == key)).first()
        if row is None:
            return NoopState(revision)
        return NoopState(revision, row.record, int(row.revision))

    def save_noop(self, key: str, record: Mapping[str, Any], revision: int) -> None:
        t = tables.plan_inputs
        now = datetime.now(UTC)
        values = {"revision": revision, "record": dict(record), "updated": now}
        with self.transaction() as conn:
            if conn.execute(update(t).where(t.c.key == key).values(**values)).rowcount == 0:
                conn.execute(insert(t).values(key=key, **values))
                stale = select(t.c.updated).order_by(t.c.updated.desc()).offset(KEEP_NOOPS).limit(1)
                cutoff = conn.execute(stale).scalar()
                if cutoff is not None:
                    conn.execute(delete(t).where(t.c.updated <= cutoff))
