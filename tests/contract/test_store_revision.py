"""The store revision and the known no-ops (the no-op shortcut of `wp plan`), on every store: SQLite,
PostgreSQL and a wp server. A write to a declared object or a setting, by any path, moves the revision; running
work does not; an apply says which revision it produced only when nothing else wrote since its plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_store_contract import PROJECT, change, plan_for, pool, queue, record, seed

from reconciler.engine.plan import Action
from reconciler.model import FlowRun, LogLine, WorkPool, WorkQueue, pool_key, queue_key
from reconciler.store.sql import SqlStore


def revision(store: SqlStore) -> int:
    found = store.snapshot().revision
    assert isinstance(found, int)
    return found


def test_every_write_to_a_declared_object_or_setting_moves_the_revision(store: SqlStore) -> None:
    seed(store)
    writes = [
        lambda: store.create_work_pool(WorkPool(name="hand")),
        lambda: store.update_work_pool("prod", concurrency_limit=3),
        lambda: store.update_work_pool("prod", paused=True),
        lambda: store.create_work_queue(WorkQueue(work_pool="prod", name="extra")),
        lambda: store.update_work_queue("prod", "low", description="by hand"),
        lambda: store.update_deployment("etl", "nightly", description="by hand"),
        lambda: store.set_default_work_pool("hand"),
        lambda: store.delete_work_queue("prod", "extra"),
        lambda: store.delete_deployment("etl", "nightly"),  # also records it as deleted outside wp
        lambda: store.delete_work_pool("hand"),
    ]
    for write in writes:
        before = revision(store)
        write()
        assert revision(store) > before


def test_running_work_leaves_the_revision_alone(store: SqlStore) -> None:
    seed(store)
    before = revision(store)
    now = datetime.now(UTC)
    store.create_flow_run(
        FlowRun(
            id="00000000-0000-0000-0000-000000000001",
            name="run-1",
            flow="etl",
            deployment="etl/nightly",
            work_pool="prod",
            work_queue="low",
            state="SCHEDULED",
            expected_start_time=now - timedelta(seconds=1),
        )
    )
    store.heartbeat_worker("prod", "w1", interval=30, now=now)
    claimed = store.claim_runs("prod", "w1", limit=1, scheduled_before=now, now=now)  # records the poll
    assert [r.name for r in claimed] == ["run-1"]
    store.set_run_state("00000000-0000-0000-0000-000000000001", "RUNNING", now=now)
    store.append_logs(
        [LogLine(run_id="00000000-0000-0000-0000-000000000001", seq=0, timestamp=now, message="hi")]
    )
    store.mark_late_runs(now)
    assert revision(store) == before


def test_an_apply_reports_the_revision_it_produced_only_from_an_unchanged_store(store: SqlStore) -> None:
    seed(store)
    base = revision(store)
    applied = store.apply(
        plan_for(store, change(pool_key("second"), Action.CREATE, pool("second"))),
        record(base_revision=base),
    )
    assert applied.revision is not None and applied.revision > base
    assert revision(store) == applied.revision
    if getattr(store, "dialect", "") == "postgresql":  # once per transaction, however many rows it writes
        assert applied.revision == base + 1
    # a write between the plan and its apply: the apply cannot vouch for the state it leaves
    base = revision(store)
    store.update_work_pool("prod", description="by hand")
    applied = store.apply(
        plan_for(store, change(queue_key("second", "q"), Action.CREATE, queue("q", 5, "second"))),
        record(base_revision=base),
    )
    assert applied.revision is None
    # history records are not a place for it
    assert store.list_history(PROJECT, 1)[0].revision is None


def test_a_known_noop_is_read_back_with_the_revision_now(store: SqlStore) -> None:
    seed(store)
    assert store.read_noop("k" * 64).record is None
    now = revision(store)
    store.save_noop("k" * 64, {"project": PROJECT, "inputs": {"fingerprint": "f"}}, now)
    state = store.read_noop("k" * 64)
    assert (state.revision, state.record_revision) == (now, now)
    assert state.record == {"project": PROJECT, "inputs": {"fingerprint": "f"}}
    store.save_noop("k" * 64, {"project": PROJECT, "inputs": {"fingerprint": "g"}}, now)  # replaced
    assert (state := store.read_noop("k" * 64)).record is not None and state.record["inputs"][
        "fingerprint"
    ] == "g"
    store.update_work_pool("prod", concurrency_limit=1)
    state = store.read_noop("k" * 64)
    assert state.record_revision == now and state.revision > now
    # saving a known no-op is not a declared write
    store.save_noop("j" * 64, {"project": PROJECT}, state.revision)
    assert revision(store) == state.revision
