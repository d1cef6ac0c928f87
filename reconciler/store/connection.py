"""The SQL engine under every SqlStore: URL handling, SQLite pragmas, write transactions, migrations, errors.

Owns `SqlEngine` (`engine`, `dialect`, `transaction()`, `reading()`), which the object, lock and run mixins of
SqlStore build on; running Alembic to head on open (skipped when already there); and turning driver errors
into reconciler.errors. Must never know about plans, pools or runs.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url

from reconciler.errors import ConflictError, StoreError, StoreUnavailableError, WpError
from reconciler.store.column_json import column_json
from reconciler.store.sqlite_head import create_fresh

RETRY_AFTER_SECONDS = 1.0  # what a transient database failure tells the caller to wait before trying again
HEAD_REVISION = "0006_lock_holder"  # tests check that it matches the newest file in migrations/versions
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
_PG_MIGRATION_LOCK = 77_000_001  # pg_advisory_xact_lock key: one migrator at a time


def normalize_url(url: str) -> str:
    """Accept `postgres://` and `postgresql://` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_url(url: str) -> str:
    """The URL with any password hidden, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(unparsable url)"


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        json_serializer=column_json,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN: concurrent writers wait on busy_timeout instead of failing
        # with "database is locked" when a read lock would have to be upgraded mid-transaction.
        mode = conn.info.pop("wp_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (once per file; it persists). Switching needs the database to itself and
    SQLite answers "database is locked" at once, without its busy timeout, when another connection is using
    it: so ask first (most connections find WAL already set), and retry the switch for a while."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_sql_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url)
        return create_engine(url, pool_pre_ping=True, json_serializer=column_json)
    except (exc.ArgumentError, ImportError) as e:
        raise StoreError(f"cannot use store URL {describe_url(url)}: {e}") from None


def is_transient(error: exc.SQLAlchemyError) -> bool:
    """A failure the same call may well not meet again a moment later: the connection was lost or refused (a PostgreSQL
    restart), the server is shutting down, a serialization failure or deadlock, SQLite busy or locked, no
    pooled connection free in time. Not: a bad statement, a missing table, a refused value."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.DisconnectionError | exc.TimeoutError | exc.PendingRollbackError):
        return True
    if isinstance(error, exc.InterfaceError):  # psycopg: the connection is closed
        return True
    if isinstance(error, exc.OperationalError):
        if isinstance(error.orig, sqlite3.OperationalError):
            text_ = str(error.orig).lower()
            return "locked" in text_ or "busy" in text_
        return True  # psycopg's OperationalError: connection failures, admin shutdown, rollbacks to retry
    return False


@contextlib.contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Driver errors become StoreError / ConflictError naming the store, and transient ones (is_transient)
    StoreUnavailableError, which the API answers 503 with Retry-After; wp's own errors pass through."""
    try:
        yield
    except WpError:
        raise
    except exc.IntegrityError as e:
        raise ConflictError(f"the store refused a write: {getattr(e, 'orig', e)}") from e
    except exc.SQLAlchemyError as e:
        if not is_transient(e):
            raise _store_error(url, e) from e
        raise StoreUnavailableError(
            f"the store at {describe_url(url)} is briefly unavailable, try again: "
            f"{str(getattr(e, 'orig', e)).strip()}",
            retry_after=RETRY_AFTER_SECONDS,
        ) from e


def _store_error(url: str, e: exc.SQLAlchemyError) -> StoreError:
    if isinstance(e, exc.DBAPIError):
        return StoreError(f"the store at {describe_url(url)} failed: {getattr(e, 'orig', e)}")
    return StoreError(f"the store at {describe_url(url)} failed: {e}")


def _current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except exc.DBAPIError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to head. A store already at head costs one SELECT."""
    with engine.connect() as conn:
        conn.info["wp_begin"] = "DEFERRED"
        with conn.begin():
            if _current_revision(conn) == HEAD_REVISION:
                return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        elif create_fresh(conn, HEAD_REVISION):  # a new SQLite file: the head schema in one go
            return
        migrate_by_alembic(conn)


def migrate_by_alembic(conn: Connection) -> None:
    """Run the migrations up to head in `conn`'s transaction."""
    # Alembic costs ~0.5 s to import: only when the schema is not at head.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


class SqlEngine:
    """Engine and transactions shared by the SqlStore mixins (objects, locks, runs)."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine: Engine = make_sql_engine(self.url)
        self.dialect: str = self.engine.dialect.name
        with translated_errors(self.url):
            migrate(self.engine)

    @property
    def _locks_rows(self) -> bool:
        # SQLite has no row locks; BEGIN IMMEDIATE (SqlEngine.transaction) makes each writer exclusive.
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        with translated_errors(self.url), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: a consistent view that does not block writers on SQLite (WAL)."""
        with translated_errors(self.url), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.info["wp_begin"] = "DEFERRED"
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe_url(self.url)!r})"
