"""Shared fixtures: real stores on SQLite (temp dir) and PostgreSQL.

PostgreSQL comes from `WP_TEST_POSTGRES_URL` (a role that may CREATE DATABASE) or, when the binaries exist,
from a throwaway cluster started for the session on 127.0.0.1 in a temp dir (as the `postgres` OS user when
run as root, since initdb refuses root). Each test gets a fresh database cloned from a migrated template.
Without either, tests that need PostgreSQL skip, and fail when CI=true.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reconciler.store.sql import SqlStore
from tests.wp_server import free_port

TEMPLATE_DB = "wp_template"


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _as_postgres_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def _throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="wp-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    run = _as_postgres_user
    subprocess.run(
        run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _admin(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[tuple[str, str] | None]:
    """(admin URL, name of a migrated template database) of a PostgreSQL server, or None."""
    given = os.environ.get("WP_TEST_POSTGRES_URL")
    bin_dir = _pg_bin()
    with contextlib.ExitStack() as stack:
        if given:
            admin = SqlStore(given).url  # normalized to psycopg 3
        elif bin_dir is not None:
            admin = stack.enter_context(_throwaway_cluster(bin_dir))
        else:
            yield None
            return
        template = f"{TEMPLATE_DB}_{uuid.uuid4().hex[:8]}"
        _admin(admin, f'CREATE DATABASE "{template}"')
        SqlStore(make_url(admin).set(database=template).render_as_string(hide_password=False)).close()
        yield admin, template


@pytest.fixture
def postgres_url(_postgres_server: tuple[str, str] | None) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    if _postgres_server is None:
        message = (
            "PostgreSQL is not available: set WP_TEST_POSTGRES_URL or install the PostgreSQL server binaries"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    admin, template = _postgres_server
    name = f"wp_test_{uuid.uuid4().hex[:12]}"
    _admin(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wp.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh store on each SQL backend."""
    return str(request.getfixturevalue("postgres_url" if request.param == "postgres" else "sqlite_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """A fresh SqlStore on SQLite and on PostgreSQL."""
    opened = SqlStore(store_url)
    yield opened
    opened.close()
