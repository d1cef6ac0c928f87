"""Fixtures of the sync tests: a real git "remote" (a bare repository) with a working clone that commits and
pushes, a fresh SQLite store, and sync loops with short intervals against them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler.gitops.sync import SyncLoop, SyncSettings
from reconciler.store.sql import SqlStore

FLOW = "def say_hello(name: str = 'world') -> str:\n    return name\n"


def project_yaml(pools: dict[str, int], deployments: tuple[str, ...] = ("d",), extra: str = "") -> str:
    """A wp.yaml: process pools with these concurrency limits, deployments of say_hello in the first pool."""
    lines = ["project: demo", "work_pools:"]
    for name, limit in pools.items():
        lines += [f"  - name: {name}", "    type: process", f"    concurrency_limit: {limit}"]
        lines += ["    ignore_changes: [paused]"]
    first = next(iter(pools))
    lines.append("deployments:" if deployments else "deployments: []")
    for d in deployments:
        lines += [
            f"  - name: {d}",
            "    entrypoint: flows/hello.py:say_hello",
            f"    work_pool: {{name: {first}}}",
        ]
    return "\n".join(lines) + "\n" + extra


@dataclass
class Remote:
    """A bare repository (`url`) and a clone that commits to its `main` branch."""

    bare: Path
    clone: git.Repo

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, files: dict[str, str | None], message: str, branch: str = "main") -> str:
        root = Path(self.clone.working_dir)
        for name, text in files.items():
            path = root / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.clone.git.add("-A")
        self.clone.index.commit(message)
        self.clone.git.push("origin", f"HEAD:refs/heads/{branch}")
        return self.clone.head.commit.hexsha


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main").close()
    clone = git.Repo.clone_from(str(bare), tmp_path / "work")
    with clone.config_writer() as config:
        config.set_value("user", "name", "Ada Lovelace")
        config.set_value("user", "email", "ada@example.org")
    yield Remote(bare, clone)
    clone.close()


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
