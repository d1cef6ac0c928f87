"""SqlStore specifics: migrations on open, SQLite concurrency, and the scale target."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from reconciler.engine.plan import Action, Change, Plan, Reason
from reconciler.model import (
    Deployment,
    Schedule,
    WorkPool,
    WorkQueue,
    attributes,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)
from reconciler.store.base import ApplyRecord
from reconciler.store.connection import HEAD_REVISION, MIGRATIONS
from reconciler.store.sql import SqlStore


def test_head_revision_constant_matches_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_reopening_keeps_data_and_skips_migration(sqlite_url: str) -> None:
    SqlStore(sqlite_url).create_work_pool(WorkPool(name="p"))
    reopened = SqlStore(sqlite_url)
    assert [p.name for p in reopened.list_work_pools()] == ["p"]


def test_sqlite_store_uses_wal(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_bad_url_is_a_clear_store_error(tmp_path: Path) -> None:
    from reconciler.errors import StoreError

    with pytest.raises(StoreError, match="cannot use store URL"):
        SqlStore("nosuchdb://x")


def _hammer(url: str, worker: int, count: int) -> None:
    store = SqlStore(url)
    for i in range(count):
        store.create_work_queue(WorkQueue(work_pool="p", name=f"w{worker}-{i}"))
        store.update_work_pool("p", description=f"{worker}-{i}")


def test_concurrent_sqlite_writers_never_see_database_is_locked(sqlite_url: str) -> None:
    SqlStore(sqlite_url).create_work_pool(WorkPool(name="p"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(sqlite_url, w, 40)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    priorities = [q.priority for q in SqlStore(sqlite_url).list_work_queues("p")]
    assert len(priorities) == 81 and len(set(priorities)) == 81


def _big_plan(pools: int, deployments: int) -> Plan:
    changes: list[Change] = []

    def create(key: object, value: object) -> None:
        changes.append(Change(key, Action.CREATE, None, attributes(value), Reason.NOT_IN_STORE))  # type: ignore[arg-type]

    for p in range(pools):
        create(pool_key(f"pool-{p}"), WorkPool(name=f"pool-{p}"))
        for q in range(3):
            create(
                queue_key(f"pool-{p}", f"q{q}"),
                WorkQueue(work_pool=f"pool-{p}", name=f"q{q}", priority=q + 1),
            )
    for d in range(deployments):
        dep = Deployment(
            flow="f", name=f"d{d}", entrypoint="f.py:f", work_pool=f"pool-{d % pools}", tags=("t",)
        )
        create(deployment_key("f", f"d{d}"), dep)
        create(schedule_key("f", f"d{d}", "s"), Schedule(slug="s", interval=3600))
    return Plan("scale", tuple(changes))


def test_a_large_plan_applies_in_one_go_and_reads_back_whole(sqlite_url: str) -> None:
    # Timing belongs to bench/plan_scale.py; this checks that bulk writes and the snapshot lose nothing.
    store = SqlStore(sqlite_url)
    store.apply(_big_plan(200, 2_000), ApplyRecord("scale", "bench", {"add": 1}))
    snap = store.snapshot()
    assert len(snap.objects) == 200 * 5 + 4_000
    assert all(o.owner == "scale" for o in snap.objects.values())


def test_a_store_made_before_sync_is_upgraded_keeping_its_history(sqlite_url: str) -> None:
    """0001 → 0002_sync: the history gains author and message columns, the sync_status table appears."""
    from alembic import command
    from sqlalchemy import text

    from reconciler.store.base import SyncKey, SyncStatus
    from reconciler.store.connection import make_sql_engine

    engine = make_sql_engine(sqlite_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001_initial")
        conn.execute(
            text(
                "INSERT INTO apply_history (time, project, actor, summary, addresses, git_commit) "
                "VALUES ('2026-01-01 00:00:00', 'old', 'me', :summary, '[]', 'abc')"
            ),
            {"summary": '{"add": 1, "change": 0, "destroy": 0}'},
        )
    engine.dispose()
    store = SqlStore(sqlite_url)
    [old] = store.list_history()
    assert (old.project, old.git_commit, old.git_author, old.git_message) == ("old", "abc", None, None)
    store.save_sync_status(SyncStatus(SyncKey("r", "main", ".")))
    assert len(store.list_sync_status()) == 1
    store.close()


def test_a_store_made_before_parameter_schemas_is_upgraded_keeping_its_deployments(sqlite_url: str) -> None:
    """0002_sync → 0004_parameter_schema: deployments gain `parameter_schema`, None for those applied before."""
    from alembic import command
    from sqlalchemy import text

    from reconciler.store.connection import make_sql_engine

    engine = make_sql_engine(sqlite_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0002_sync")
        conn.execute(
            text(
                "INSERT INTO deployments (flow, name, entrypoint, job_variables, parameters, tags, paused, "
                "pull_steps, created, updated) VALUES ('etl', 'nightly', 'flows/etl.py:etl', '{}', "
                "'{\"day\": 1}', '[]', 0, '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    store = SqlStore(sqlite_url)
    old = store.get_deployment("etl", "nightly")
    assert (old.parameters, old.parameter_schema) == ({"day": 1}, None)
    store.close()


def test_a_store_made_before_run_history_is_upgraded_keeping_its_workers(store_url: str) -> None:
    """0002_sync → 0003_run_history (and back): workers are kept and gain a host and pid."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from reconciler.store.connection import make_sql_engine

    engine = make_sql_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        command.downgrade(config, "0002_sync")  # the downgrade must work too
        conn.execute(
            text(
                "INSERT INTO work_pools (name, type, paused, base_job_template, created, updated) "
                "VALUES ('old', 'process', false, '{}', :t, :t)"
            ),
            {"t": datetime(2026, 1, 1)},
        )
        conn.execute(
            text(
                "INSERT INTO workers (work_pool, name, last_heartbeat, heartbeat_interval) "
                "VALUES ('old', 'w-old', :t, 30)"
            ),
            {"t": datetime(2026, 1, 1)},
        )
    engine.dispose()
    store = SqlStore(store_url)
    [worker] = store.list_workers("old", datetime(2026, 1, 1, tzinfo=UTC))
    assert (worker.name, worker.host, worker.pid, worker.runs_in_hand) == ("w-old", None, None, 0)
    store.heartbeat_worker("old", "w-old", interval=30.0, now=datetime.now(UTC), host="h", pid=1)
    assert store.list_workers("old", datetime.now(UTC))[0].host == "h"
    store.close()
