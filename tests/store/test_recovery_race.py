"""Dead-worker recovery by two servers at once, on PostgreSQL: server B has read a dead worker's PENDING run when
server A requeues it and a live worker claims it; B's recovery must then leave the live worker's claim alone
(else the run goes back to SCHEDULED while that worker starts it, and a third worker runs it again)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import reconciler.store.workers as workers_module
from reconciler.model import FlowRun, WorkPool
from reconciler.store.sql import SqlStore

pytestmark = pytest.mark.postgres


def test_a_recovery_that_read_stale_rows_keeps_a_live_workers_new_claim(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = SqlStore(postgres_url), SqlStore(postgres_url)
    try:
        t0 = datetime.now(UTC)
        a.create_work_pool(WorkPool(name="p", type="process"))
        run_id = str(uuid.uuid4())
        a.create_flow_run(
            FlowRun(
                id=run_id, name="r", flow="f", deployment="f/d", work_pool="p", work_queue="default",
                state="SCHEDULED", expected_start_time=t0 - timedelta(seconds=1),
            )
        )  # fmt: skip
        a.heartbeat_worker("p", "doomed", interval=1, now=t0)
        assert [r.id for r in a.claim_runs("p", "doomed", limit=1, scheduled_before=t0, now=t0)] == [run_id]
        later = t0 + timedelta(seconds=10)
        real: Callable[..., bool] = workers_module.worker_online
        interleaved = []

        def online_after_server_a_acts(*args: Any) -> bool:
            if not interleaved:  # B has read the rows; now A recovers and a live worker claims the run
                interleaved.append(True)
                monkeypatch.setattr(workers_module, "worker_online", real)
                assert a.recover_dead_workers(later) == {"workers": 1, "requeued": 1, "crashed": 0}
                a.heartbeat_worker("p", "alive", interval=30, now=later)
                claimed = a.claim_runs("p", "alive", limit=1, scheduled_before=later, now=later)
                assert [r.id for r in claimed] == [run_id]
            return real(*args)

        monkeypatch.setattr(workers_module, "worker_online", online_after_server_a_acts)
        b.recover_dead_workers(later)
        assert interleaved
        after = a.get_flow_run(run_id)
        assert (after.state, after.worker) == ("PENDING", "alive")
    finally:
        a.close()
        b.close()
