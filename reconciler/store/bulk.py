"""Bulk INSERT of prepared rows: the driver's executemany, fed values the columns' own types converted.

Owns the one fast write path of a large apply on SQLite. SQLAlchemy's executemany handles each row's dict
on its own (bind names, defaults, type processors, a positional tuple): for a 24,000-object plan that was
most of the writing, more than SQLite's own work. Here the statement is compiled once per table and set of
columns, and each column's values go through the bind processor SQLAlchemy would use for it, a column at a
time, so the stored values are the same. Other dialects (PostgreSQL's driver batches the rows itself) take
SQLAlchemy's ordinary path. Must never commit or open transactions: the caller's transaction holds the write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.sql.schema import ScalarElementColumnDefault

# (table, columns given, dialect) -> the statement's text and, per placeholder, its column and processor
_Prepared = tuple[str, list[str], list[Callable[[Any], Any] | None], dict[str, Any]]
_PREPARED: dict[tuple[str, tuple[str, ...], str], _Prepared | None] = {}


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT every row (all with the same keys, as any executemany needs) in one executemany."""
    if not rows:
        return
    prepared = _prepare(conn, table, tuple(rows[0]))
    if prepared is None:
        conn.execute(insert(table), list(rows))
        return
    sql, names, processors, defaults = prepared
    columns: list[Sequence[Any]] = []
    for name, process in zip(names, processors, strict=True):
        if name in defaults:
            values: Sequence[Any] = [defaults[name]] * len(rows)
        else:
            values = [row[name] for row in rows]
        if process is not None:
            first = values[0]
            if all(v is first for v in values):  # one value for every row (the apply's time): convert it once
                values = [process(first)] * len(values)
            else:
                values = list(map(process, values))
        columns.append(values)
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _prepare(conn: Connection, table: Table, keys: tuple[str, ...]) -> _Prepared | None:
    """The compiled statement for these columns, or None where SQLAlchemy's own path is needed: a dialect
    other than SQLite, or a column left out whose default is not a plain value."""
    dialect = conn.dialect
    memo = (table.name, keys, dialect.name)
    if memo in _PREPARED:
        return _PREPARED[memo]
    prepared: _Prepared | None = None
    if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ())
        defaults: dict[str, Any] = {}
        usable = True
        for name in names:
            if name in keys:
                continue
            default = table.c[name].default if name in table.c else None
            if isinstance(default, ScalarElementColumnDefault):
                defaults[name] = default.arg
            else:
                usable = False
        # what SQLAlchemy's own execution applies to each value (a sequence: a tuple type's, not used here)
        found = compiled._bind_processors
        processors: list[Callable[[Any], Any] | None] = []
        for name in names:
            process = found.get(name)
            if process is None or callable(process):
                processors.append(process)
            else:
                usable = False
        if usable:
            prepared = (str(compiled), names, processors, defaults)
    _PREPARED[memo] = prepared
    return prepared
