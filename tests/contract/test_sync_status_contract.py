"""The sync status records of the Store protocol (SPEC §8), on SQLite, PostgreSQL and over HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.errors import NotFoundError
from reconciler.store.base import SyncKey, SyncPhase, SyncStatus

KEY = SyncKey("https://git.example.org/acme/pools.git", "main", "envs/prod")
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _failed(n: int) -> SyncStatus:
    return SyncStatus(
        KEY,
        phase=SyncPhase.FAILED,
        reason="InvalidConfig",
        message="wp.yaml:3:5: error: bad\n    detail",
        fetched_revision="b" * 40,
        attempted_revision="b" * 40,
        applied_revision="a" * 40,
        last_attempt_at=T0,
        last_success_at=T0 - timedelta(hours=1),
        last_plan={"add": 1, "change": 0, "destroy": 2},
        drift=("work_pool.p",),
        attempts=tuple({"time": T0.isoformat(), "revision": "b" * 40, "result": f"r{i}"} for i in range(n)),
        failures=3,
        live_digest="c" * 64,
    )


def test_a_status_round_trips_and_keeps_the_last_ten_attempts(store: Any) -> None:
    assert store.get_sync_status(KEY) is None and store.list_sync_status() == []
    saved = store.save_sync_status(_failed(12))
    assert saved.updated_at is not None
    expected = replace(_failed(10), updated_at=saved.updated_at)
    assert saved == expected and store.get_sync_status(KEY) == expected
    assert store.list_sync_status() == [expected]
    again = store.save_sync_status(replace(_failed(1), phase=SyncPhase.SYNCED, failures=0))
    assert again.phase is SyncPhase.SYNCED and len(store.list_sync_status()) == 1


def test_controls_are_kept_apart_from_what_the_loop_writes(store: Any) -> None:
    with pytest.raises(NotFoundError, match="wp sync start"):
        store.control_sync(None, suspend=True, now=T0)
    store.save_sync_status(_failed(1))
    other = SyncKey(KEY.repo, "staging", ".")
    store.save_sync_status(SyncStatus(other, phase=SyncPhase.SYNCED))
    [one] = store.control_sync(KEY, suspend=True, request=True, now=T0)
    assert one.suspended and one.requested_at == T0 and one.request_pending
    # the loop saves its view (which still says unsuspended): the control fields stay as the user set them
    kept = store.save_sync_status(replace(_failed(2), handled_request_at=T0))
    assert kept.suspended and not kept.request_pending
    both = store.control_sync(None, suspend=False, now=T0)
    assert [s.key for s in both] == sorted([KEY, other], key=lambda k: (k.repo, k.branch, k.path))
    assert not any(s.suspended for s in both)
    with pytest.raises(NotFoundError):
        store.control_sync(SyncKey("elsewhere", "main", "."), request=True, now=T0)
