"""A new SQLite store is built from the head schema's statements (reconciler/store/sqlite_head.py), without
Alembic, and holds exactly what the migrations build; anything else still goes through the migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.store import sqlite_head
from reconciler.store.connection import HEAD_REVISION
from reconciler.store.sql import SqlStore


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as raw:
        return list(raw.iterdump())


def test_the_statements_are_what_the_migrations_build() -> None:
    assert sqlite_head.HEAD == HEAD_REVISION, "a new migration: run `python -m reconciler.store.sqlite_head`"
    assert list(sqlite_head.STATEMENTS) == sqlite_head.dump_by_migrations(), (
        "the migrations build another schema: run `python -m reconciler.store.sqlite_head`"
    )


def test_a_new_sqlite_store_is_the_migrated_one_without_alembic(tmp_path: Path) -> None:
    fast = tmp_path / "fast.db"
    script = (
        "import sys\nfrom reconciler.store.sql import SqlStore\n"
        f"SqlStore('sqlite:///{fast}').close()\nprint('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    slow = tmp_path / "slow.db"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sqlite_head, "HEAD", "not-the-head")  # the migrations' path
        SqlStore(f"sqlite:///{slow}").close()
    assert _dump(fast) == _dump(slow)
    SqlStore(f"sqlite:///{fast}").close()  # opened again: at head already, nothing to do
    assert _dump(fast) == _dump(slow)


def test_a_database_with_tables_goes_through_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE notes (text TEXT)")
        raw.execute("INSERT INTO notes VALUES ('kept')")
    store = SqlStore(f"sqlite:///{path}")
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
        assert raw.execute("SELECT text FROM notes").fetchall() == [("kept",)]
