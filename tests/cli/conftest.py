"""Fixtures of the CLI tests: a fresh WP_HOME per test, `wp` bound to it (in-process and as a subprocess),
the same SQLite store opened directly, and a writer of small projects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_projects import DEMO, FLOW
from wp_cli import ProjectWriter, Wp, WpResult, run_wp, run_wp_process

from reconciler.store.sql import SqlStore


def write_project(directory: Path, wp_yaml: str) -> Path:
    """A project directory with `wp_yaml` and flows/hello.py (defines say_hello)."""
    (directory / "flows").mkdir(parents=True, exist_ok=True)
    (directory / "flows" / "hello.py").write_text(FLOW)
    (directory / "wp.yaml").write_text(wp_yaml)
    return directory


@pytest.fixture(scope="session")
def _help_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_help_cache(_help_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`wp --help` caches the rendered help under $XDG_CACHE_HOME (`reconciler.cli.helpcache`): the tests'
    go to a temporary directory, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_help_cache))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def wp(home: Path) -> Wp:
    """`wp ARGS` in-process against this test's own SQLite store."""

    def call(
        *args: str | Path, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> WpResult:
        return run_wp(*args, env={"WP_HOME": str(home), **(env or {})}, input=input)

    return call


@pytest.fixture
def wp_process(home: Path) -> Wp:
    """`wp ARGS` as a real subprocess against this test's own SQLite store."""

    def call(
        *args: str | Path, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> WpResult:
        return run_wp_process(*args, env={"WP_HOME": str(home), **(env or {})}, input=input)

    return call


@pytest.fixture
def live_store(home: Path) -> Iterator[SqlStore]:
    """The store that `wp` uses in this test, opened directly."""
    home.mkdir(parents=True, exist_ok=True)
    opened = SqlStore(f"sqlite:///{home / 'wp.db'}")
    yield opened
    opened.close()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A project `demo`: pool p (limit 4, ignore_changes paused) with queue urgent, deployment say-hello/d."""
    return write_project(tmp_path / "demo", DEMO)


@pytest.fixture
def project(tmp_path: Path) -> ProjectWriter:
    """`project(dirname, wp_yaml)` writes a project under tmp_path."""
    return lambda name, text: write_project(tmp_path / name, text)
