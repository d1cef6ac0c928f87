"""open_store picks the store from the environment it is given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import StoreError
from reconciler.store.open import open_store
from reconciler.store.sql import SqlStore


def test_default_is_sqlite_under_wp_home_which_is_created(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    store = open_store({"WP_HOME": str(home)})
    assert isinstance(store, SqlStore) and store.dialect == "sqlite"
    assert (home / "wp.db").exists()


def test_database_url_wins_over_wp_home(tmp_path: Path) -> None:
    store = open_store(
        {"WP_HOME": str(tmp_path / "home"), "WP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert isinstance(store, SqlStore)
    assert (tmp_path / "x.db").exists() and not (tmp_path / "home").exists()


def test_postgres_url_is_used_with_psycopg(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    store = open_store({"WP_DATABASE_URL": plain})
    assert isinstance(store, SqlStore) and store.dialect == "postgresql"


def test_unwritable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create WP_HOME"):
        open_store({"WP_HOME": str(blocker / "home")})


def test_api_url_gives_an_http_store() -> None:
    store = open_store({"WP_API_URL": "http://127.0.0.1:4200", "WP_API_KEY": "k"})
    assert not isinstance(store, SqlStore)


def test_a_client_of_a_server_does_not_load_sqlalchemy() -> None:
    # A worker or CLI with WP_API_URL talks HTTP only: SQLAlchemy would be ~20 MB of every worker for nothing.
    probe = (
        "import sys; from reconciler.store.open import open_store; "
        "store = open_store({'WP_API_URL': 'http://127.0.0.1:9'}); "
        "print(type(store).__name__, 'sqlalchemy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["HttpStore", "False"]
