"""Which store a command talks to, chosen from the environment.

Owns `open_store(env)`: `WP_API_URL` → HttpStore (a wp server), else `WP_DATABASE_URL` → SqlStore on that
database, else SQLite at `$WP_HOME/wp.db` (`WP_HOME` defaults to `~/.wp`, created if missing). Must never read
os.environ itself: the caller passes the mapping.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

from reconciler.errors import StoreError

if TYPE_CHECKING:
    from reconciler.store.base import Store

DEFAULT_HOME = "~/.wp"


def default_sqlite_url(env: Mapping[str, str]) -> str:
    home = Path(env.get("WP_HOME") or DEFAULT_HOME).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot create WP_HOME {home}: {e.strerror}; set WP_HOME to a writable directory"
        ) from e
    return f"sqlite:///{home / 'wp.db'}"


def _http_store(env: Mapping[str, str]) -> Store:
    try:
        client = importlib.import_module("reconciler.store.client")
    except ImportError as e:
        raise StoreError(
            f"WP_API_URL is set but this wp cannot talk to a server ({e}); "
            "unset WP_API_URL to use a local store"
        ) from e
    return cast("Store", client.HttpStore(env["WP_API_URL"], env.get("WP_API_KEY") or None))


def open_store(env: Mapping[str, str]) -> Store:
    if env.get("WP_API_URL"):
        return _http_store(env)
    url = env.get("WP_DATABASE_URL") or default_sqlite_url(env)
    # Imported here: a worker or a CLI talking to a server (WP_API_URL) never loads SQLAlchemy.
    from reconciler.store.sql import SqlStore

    return SqlStore(url)
