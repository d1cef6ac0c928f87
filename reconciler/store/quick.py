"""The no-op shortcut's one read, without the SQL toolkit or the HTTP client: the store revision and a known
no-op, from a SQLite file through the standard library's sqlite3, or from a wp server through urllib
(`GET /plan-inputs/{key}`, as HttpStore.read_noop). Importing SQLAlchemy, httpx and the model would cost
`wp plan` more than the whole shortcut.

Owns only that read, read-only (`mode=ro`: it never creates or migrates a database). Anything unexpected (no
such file, an older schema or server, PostgreSQL, an error answer) answers None, and the caller opens the store
as usual and asks it. Must never write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class NoopState:
    """What the no-op shortcut asks a store in one read (`Store.read_noop`): its revision now, and the known
    no-op recorded under a key (None if none) with the revision it was recorded at."""

    revision: int
    record: Mapping[str, Any] | None = None
    record_revision: int | None = None


DEFAULT_HOME = "~/.wp"  # as reconciler.store.open


def sqlite_path(env: Mapping[str, str]) -> Path | None:
    """The SQLite file `open_store(env)` would use; None for a server or another database."""
    if env.get("WP_API_URL"):
        return None
    url = env.get("WP_DATABASE_URL")
    if not url:
        return Path(env.get("WP_HOME") or DEFAULT_HOME).expanduser() / "wp.db"
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url == prefix + ":memory:":
        return None
    return Path(url[len(prefix) :])


def read_noop(env: Mapping[str, str], key: str) -> NoopState | None:
    if env.get("WP_API_URL"):
        return _read_server(env["WP_API_URL"], env.get("WP_API_KEY") or None, key)
    path = sqlite_path(env)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5.0, isolation_level=None
        )
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN")  # one read transaction: the revision and the record from the same state
        found = conn.execute("SELECT revision FROM store_revision WHERE id = 1").fetchone()
        row = conn.execute("SELECT revision, record FROM plan_inputs WHERE key = ?", (key,)).fetchone()
        conn.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if found is None:
        return None
    if row is None:
        return NoopState(int(found[0]))
    try:
        record = json.loads(row[1])
    except (TypeError, ValueError):
        return None
    return NoopState(int(found[0]), record if isinstance(record, dict) else None, int(row[0]))


def _read_server(base_url: str, api_key: str | None, key: str) -> NoopState | None:
    import urllib.request

    request = urllib.request.Request(f"{base_url.rstrip('/')}/plan-inputs/{quote(key, safe='')}")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            data = json.loads(answer.read())
        record = data.get("record")
        return NoopState(
            int(data["revision"]),
            record if isinstance(record, dict) else None,
            int(data["record_revision"]) if data.get("record_revision") is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
