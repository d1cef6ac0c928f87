"""The settings rows of the store: small named values (the default pool) and per-address maps kept beside
the declared objects (which addresses are protected, which managed objects were deleted outside wp).

Owns their keys and shapes. Must never commit or open transactions: callers run these inside theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from reconciler.model import DEFAULT_SECRET_PATTERNS, Key
from reconciler.store import rows, tables
from reconciler.store.base import DeletedObject

PROTECTED_SETTING = "protected"  # settings row: {address: project} of objects applied with `protect: true`
# settings row: {address: {"project": ..., "applied": ...}} of managed objects deleted outside wp
DELETED_SETTING = "deleted_outside"
# settings row: {project: [patterns]} that projects add to the default secret patterns (`secret_patterns:`), so
# that the API masks their secrets as their plans do
SECRET_PATTERNS_SETTING = "secret_patterns"


def read_setting_map(conn: Connection, key: str) -> dict[str, Any]:
    value = conn.execute(select(tables.settings.c.value).where(tables.settings.c.key == key)).scalar()
    return dict(value) if isinstance(value, dict) else {}


def write_setting_map(conn: Connection, key: str, value: Mapping[str, Any]) -> None:
    """Replace a settings row holding a mapping (an empty mapping removes the row)."""
    conn.execute(delete(tables.settings).where(tables.settings.c.key == key))
    if value:
        conn.execute(insert(tables.settings), {"key": key, "value": dict(value)})


def read_protected(conn: Connection) -> dict[str, str]:
    return read_setting_map(conn, PROTECTED_SETTING)


def read_deleted(conn: Connection) -> dict[Key, DeletedObject]:
    out: dict[Key, DeletedObject] = {}
    for address, entry in read_setting_map(conn, DELETED_SETTING).items():
        if isinstance(entry, dict) and isinstance(entry.get("project"), str):
            key = Key.parse(address)
            out[key] = DeletedObject(key, entry["project"], entry.get("applied"))
    return out


def record_deleted(conn: Connection, gone: Iterable[tuple[Key, rows.Row]]) -> None:
    """Remember the managed objects among rows deleted outside a plan (rows made by hand have no owner)."""
    found = {
        key.address: {"project": row["owner"], "applied": row["applied"]}
        for key, row in gone
        if row["owner"] is not None
    }
    if found:
        write_setting_map(conn, DELETED_SETTING, read_setting_map(conn, DELETED_SETTING) | found)


def forget_deleted(conn: Connection, addresses: Iterable[str]) -> None:
    """Objects made again are no longer deleted."""
    deleted = read_setting_map(conn, DELETED_SETTING)
    if not deleted:
        return
    before = len(deleted)
    for address in addresses:
        deleted.pop(address, None)
    if len(deleted) != before:
        write_setting_map(conn, DELETED_SETTING, deleted)


def record_secret_patterns(conn: Connection, project: str, patterns: Iterable[str]) -> None:
    """Remember the patterns `project` adds to the defaults (written only when they change)."""
    added = sorted(set(patterns) - set(DEFAULT_SECRET_PATTERNS))
    known = read_setting_map(conn, SECRET_PATTERNS_SETTING)
    if known.get(project, []) == added:
        return
    if added:
        known[project] = added
    else:
        known.pop(project, None)
    write_setting_map(conn, SECRET_PATTERNS_SETTING, known)


def read_secret_patterns(conn: Connection) -> tuple[str, ...]:
    """The default secret patterns and every pattern a project added."""
    known = read_setting_map(conn, SECRET_PATTERNS_SETTING)
    added = sorted({p for patterns in known.values() for p in patterns} - set(DEFAULT_SECRET_PATTERNS))
    return (*DEFAULT_SECRET_PATTERNS, *added)


def read_default_pool(conn: Connection) -> str | None:
    value = conn.execute(
        select(tables.settings.c.value).where(tables.settings.c.key == "default_pool")
    ).scalar()
    return value if isinstance(value, str) else None
