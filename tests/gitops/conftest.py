"""Fixtures of the sync tests: a real git remote (tests/git_remote.py), a fresh SQLite store, and sync loops with
short intervals against them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from git_remote import FLOW, Remote, make_remote, project_yaml

from reconciler.gitops.sync import SyncLoop, SyncSettings
from reconciler.store.sql import SqlStore


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    made = make_remote(tmp_path)
    yield made
    made.clone.close()


@pytest.fixture
def sync_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    yield store
    store.close()


MakeLoop = Callable[..., SyncLoop]


@pytest.fixture
def make_loop(tmp_path: Path, remote: Remote, sync_store: SqlStore) -> MakeLoop:
    """`make_loop(**settings)`: a SyncLoop on `remote` and `sync_store`, interval 0.05 s, its own cache dir."""
    count = 0

    def make(store: Any = None, **settings: Any) -> SyncLoop:
        nonlocal count
        count += 1
        values: dict[str, Any] = {
            "repo": remote.url,
            "cache_dir": tmp_path / f"cache-{count}",
            "interval": 0.05,
            "lock_timeout": 2.0,
            **settings,
        }
        return SyncLoop(store or sync_store, SyncSettings(**values), env={})

    return make


@pytest.fixture
def first_commit(remote: Remote) -> str:
    return remote.commit(
        {"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW, "README.md": "demo\n"}, "first pools"
    )
