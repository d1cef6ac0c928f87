"""SPEC §1: unpausing a queue gives NOT_READY until a worker polls it, whether by command or by apply."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.apply import apply_plan
from reconciler.engine.diff import make_plan
from reconciler.model import DesiredState, WorkPool, WorkQueue
from reconciler.store.sql import SqlStore


def _desired(paused: bool) -> DesiredState:
    return DesiredState(
        project="p",
        pools=(WorkPool(name="pool"),),
        queues=(WorkQueue(work_pool="pool", name="q", priority=1, paused=paused),),
    )


def _poll(store: SqlStore) -> datetime:
    now = datetime.now(UTC)
    store.claim_runs("pool", "w", limit=1, scheduled_before=now, now=now)
    return now


def test_a_queue_resumed_by_apply_is_not_ready_until_polled(store: SqlStore) -> None:
    apply_plan(store, make_plan(_desired(False), store.snapshot(), now=datetime.now(UTC)), actor="t")
    assert store.work_queue_status("pool", "q", _poll(store)) == "READY"
    apply_plan(store, make_plan(_desired(True), store.snapshot(), now=datetime.now(UTC)), actor="t")
    assert store.work_queue_status("pool", "q", _poll(store)) == "PAUSED"
    apply_plan(store, make_plan(_desired(False), store.snapshot(), now=datetime.now(UTC)), actor="t")
    assert store.work_queue_status("pool", "q", datetime.now(UTC)) == "NOT_READY"
    assert store.work_queue_status("pool", "q", _poll(store)) == "READY"
