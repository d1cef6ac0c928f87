"""The store revision and the known no-ops, in SQL.

Owns reading the revision counter (raised by the triggers of migration 0005_revision; by code only for a large
write on SQLite, `raised_once`), holding it still for an apply, and the `plan_inputs` rows: `SqlNoops.read_noop` / `save_noop`. Must never decide what a
no-op is or fingerprint anything: reconciler/shortcut.py does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from reconciler.store import tables
from reconciler.store.connection import SqlEngine
from reconciler.store.quick import NoopState

# Beyond this many rows, a write on SQLite raises the revision once instead of once per row (`raised_once`).
BULK_ROWS = 1000
KEEP_NOOPS = 200  # plan_inputs rows kept (one per project directory and flags); older ones are dropped


def read_revision(conn: Connection, *, hold: bool = False) -> int:
    """The revision now. `hold`: lock its row until the transaction ends, so no other writer can raise it
    in between (SQLite's write transactions already exclude each other)."""
    query = select(tables.store_revision.c.revision).where(tables.store_revision.c.id == 1)
    if hold and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


@contextmanager
def raised_once(conn: Connection, rows: int) -> Iterator[None]:
    """Around a write of `rows` rows to the watched tables in `conn`'s transaction: on SQLite, above BULK_ROWS,
    the revision is raised once and the row triggers are set aside for the block. SQLite has only row
    triggers, and raising the counter for each of 24,000 rows doubled the time SQLite took to insert them.

    The triggers are dropped and created again from their own text in the same transaction: other connections
    never see them missing (SQLite's schema changes are transactional), and if the block fails the caller's
    rollback puts them back with everything else. PostgreSQL already raises it once per transaction."""
    if conn.dialect.name != "sqlite" or rows <= BULK_ROWS:
        yield
        return
    triggers = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'wp\\_revision\\_%' ESCAPE '\\'"
    ).all()
    for name, _ in triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    conn.execute(
        update(tables.store_revision)
        .where(tables.store_revision.c.id == 1)
        .values(revision=tables.store_revision.c.revision + 1)
    )
    yield
    for _, sql in triggers:
        conn.exec_driver_sql(sql)


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
