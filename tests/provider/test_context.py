"""The provider's shared Context: Terraform calls it from several threads at once (-parallelism)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from provider.resources.base import Context
from reconciler.store.base import Store
from reconciler.store.sql import SqlStore


def test_threads_asking_for_the_store_at_once_share_one(tmp_path: Path) -> None:
    """Each opened store is an engine of its own and runs the migration check; ten of them racing on one SQLite
    file once made a Terraform apply fail with "database is locked"."""
    opened: list[Store] = []

    def open_store() -> Store:
        time.sleep(0.05)  # opening takes a while: the window in which other threads used to open their own
        store = SqlStore(f"sqlite:///{tmp_path}/wp.db")
        opened.append(store)
        return store

    ctx = Context(project="terraform", open_store=open_store)
    barrier = threading.Barrier(10)
    seen: list[Store] = []

    def use() -> None:
        barrier.wait()
        seen.append(ctx.store)

    threads = [threading.Thread(target=use) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1
    assert len(seen) == 10 and all(s is opened[0] for s in seen)
