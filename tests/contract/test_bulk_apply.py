"""A large apply (thousands of objects: SQLite's bulk insert, one revision raise, the joined reference check)
stores what the ordinary row-by-row path stores, moves the revision and leaves the revision triggers in place,
and when it fails late, after every row was written, leaves the store as it was, on every store."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from test_store_contract import PROJECT, change, deployment, dump, plan_for, pool, queue, record, schedule
from test_store_revision import revision

from reconciler.engine.plan import Action, Change, Plan
from reconciler.errors import ValidationError
from reconciler.model import WorkPool, deployment_key, pool_key, queue_key, schedule_key
from reconciler.store import bulk, integrity
from reconciler.store import revision as store_revision
from reconciler.store.sql import SqlStore

POOLS = 30
DEPLOYMENTS = 700  # with their schedules and the pools' queues: over BULK_ROWS rows, over JOINED_CHECK_MIN


def large_changes(*, broken_last: bool = False) -> list[Change]:
    changes = []
    for p in range(POOLS):
        changes.append(change(pool_key(f"p{p:02}"), Action.CREATE, pool(f"p{p:02}", concurrency_limit=p)))
        changes.append(change(queue_key(f"p{p:02}", "high"), Action.CREATE, queue("high", 1, f"p{p:02}")))
        changes.append(change(queue_key(f"p{p:02}", "low"), Action.CREATE, queue("low", None, f"p{p:02}")))
    for d in range(DEPLOYMENTS):
        queue_name = "nowhere" if broken_last and d == DEPLOYMENTS - 1 else "high"
        after = deployment(
            f"d{d:04}",
            parameters={"n": d, "env": {"API_TOKEN": "clear"}},
            job_variables={"env": {"D": str(d)}},
            tags=("bulk", str(d % 3)),
            work_queue=queue_name,
        )
        after["work_pool"] = f"p{d % POOLS:02}"
        changes.append(change(deployment_key("etl", f"d{d:04}"), Action.CREATE, after))
        changes.append(
            change(schedule_key("etl", f"d{d:04}", "s"), Action.CREATE, schedule("s", f"{d % 60} * * * *"))
        )
    return changes


def _sqlite_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every declared row as SQLite holds it (JSON as its stored text), without the row times."""
    path = make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as conn:
        out = {}
        for table in ("work_pools", "work_queues", "deployments", "deployment_schedules", "settings"):
            names = [
                r[1]
                for r in conn.execute(f"PRAGMA table_info({table})")
                if r[1] not in ("created", "updated")
            ]
            out[table] = conn.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1, 2").fetchall()
        return out


def _triggers(url: str) -> list[tuple[str, str]]:
    path = make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()


def test_a_large_apply_writes_what_the_row_by_row_path_writes(
    sqlite_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = SqlStore(sqlite_url)
    slow = SqlStore(f"sqlite:///{tmp_path}/slow.db")
    triggers = _triggers(fast.url)
    try:
        fast.apply(plan_for(fast, *large_changes()), record())
        with monkeypatch.context() as m:  # SQLAlchemy's own executemany, a raise per row, keyed checks
            m.setattr(bulk, "_prepare", lambda *_: None)
            m.setattr(store_revision, "BULK_ROWS", 10**9)
            m.setattr(integrity, "JOINED_CHECK_MIN", 10**9)
            slow.apply(plan_for(slow, *large_changes()), record())
        assert _sqlite_rows(fast.url) == _sqlite_rows(slow.url)
        assert fast.snapshot().objects.keys() == slow.snapshot().objects.keys()
        assert {k: o.fingerprint for k, o in fast.snapshot().objects.items()} == {
            k: o.fingerprint for k, o in slow.snapshot().objects.items()
        }
        # the revision triggers are back, as they were: a later write by hand still moves the revision
        assert _triggers(fast.url) == triggers
        before = revision(fast)
        fast.create_work_pool(WorkPool(name="by-hand"))
        assert revision(fast) > before
    finally:
        fast.close()
        slow.close()


def test_a_large_apply_moves_the_revision_and_reads_back(store: SqlStore) -> None:
    before = revision(store)
    store.apply(plan_for(store, *large_changes()), record())
    assert revision(store) > before
    live = store.snapshot().objects
    assert len(live) == POOLS * 4 + DEPLOYMENTS * 2  # each pool also got its default queue
    assert store.get_deployment("etl", "d0699").work_pool == f"p{699 % POOLS:02}"
    priorities = {q.name: q.priority for q in store.list_work_queues("p07")}
    assert (
        priorities["high"] == 1 and len(set(priorities.values())) == 3
    )  # settled: declared kept, none shared
    after = revision(store)
    store.create_work_pool(WorkPool(name="by-hand"))
    assert revision(store) > after


def test_a_large_apply_failing_after_its_writes_changes_nothing(store: SqlStore) -> None:
    store.apply(plan_for(store, change(pool_key("kept"), Action.CREATE, pool("kept"))), record())
    before, at = dump(store), revision(store)
    plan = plan_for(store, *large_changes(broken_last=True))
    with pytest.raises(ValidationError, match=r"deployment\.etl/d0699: work queue 'nowhere' does not exist"):
        store.apply(plan, record())
    assert dump(store) == before
    assert revision(store) == at
    store.create_work_pool(WorkPool(name="by-hand"))  # the triggers survived the rollback
    assert revision(store) > at


def test_a_large_plan_names_the_first_deployment_whose_pool_is_missing(store: SqlStore) -> None:
    changes = large_changes()
    moved = [c for c in changes if c.key.kind.value == "deployment"][5]
    after = dict(moved.after or {}, work_pool="gone")
    changes = [Change(c.key, c.action, None, after, c.reason) if c is moved else c for c in changes]
    before = dump(store)
    with pytest.raises(ValidationError, match=r"deployment\.etl/d0005: work pool 'gone' does not exist"):
        store.apply(Plan(PROJECT, plan_for(store, *changes).changes), record())
    assert dump(store) == before
