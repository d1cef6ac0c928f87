"""The continuous sync loop against real git repositories and a real SQLite store (SPEC §8)."""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from git_remote import FLOW, Remote, project_yaml
from sqlalchemy import func, select

from reconciler.gitops.sync import SyncLoop, backoff_seconds
from reconciler.store import tables
from reconciler.store.base import SyncPhase
from reconciler.store.sql import SqlStore

MakeLoop = Callable[..., SyncLoop]  # the `make_loop` fixture (conftest.py)


def _history(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.apply_history)).scalar_one())


def _status(loop: SyncLoop):  # type: ignore[no-untyped-def]
    status = loop.store.get_sync_status(loop.settings.key)
    assert status is not None
    return status


def _run_for(loop: SyncLoop, seconds: float, passes: int) -> tuple[int, float]:
    """Run the loop for at least `seconds` and at least `passes` passes (a loaded machine makes passes slow);
    returns how many passes it made and how long it ran."""
    made: list[str] = []
    loop.report = lambda result: made.append(result.outcome)
    started = time.monotonic()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    deadline = started + 60
    while (time.monotonic() - started < seconds or len(made) < passes) and time.monotonic() < deadline:
        time.sleep(0.02)
    loop.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(made) >= passes, made
    return len(made), time.monotonic() - started


# ------------------------------------------------------------------------------------------ applying


def test_a_new_commit_is_applied_and_the_history_records_it(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop()
    result = loop.run_pass()
    assert result.outcome == "applied", result.message
    assert sync_store.get_work_pool("p").concurrency_limit == 4
    status = _status(loop)
    assert status.phase is SyncPhase.SYNCED and status.reason == "Applied"
    assert status.fetched_revision == status.applied_revision == status.attempted_revision == first_commit
    assert status.last_plan == {"add": 2, "change": 0, "destroy": 0}
    assert status.last_success_at is not None and len(status.attempts) == 1
    [record] = sync_store.list_history()
    assert record.git_commit == first_commit and record.git_branch == "main" and record.git_dirty is False
    assert record.git_author == "Ada Lovelace <ada@example.org>" and record.git_message == "first pools"
    assert record.actor == "wp-sync"

    second = remote.commit({"wp.yaml": project_yaml({"p": 7})}, "raise the limit")
    assert loop.run_pass().outcome == "applied"
    assert sync_store.get_work_pool("p").concurrency_limit == 7
    assert _status(loop).applied_revision == second
    assert [r.git_commit for r in sync_store.list_history()] == [second, first_commit]
    assert [a["result"] for a in _status(loop).attempts] == ["Applied", "Applied"]


def test_an_idle_pass_writes_nothing(make_loop: MakeLoop, sync_store: SqlStore, first_commit: str) -> None:
    loop = make_loop()
    loop.run_pass()
    before = _status(loop)
    result = loop.run_pass()
    assert result.outcome == "synced" and not result.changed
    assert result.message == f"up to date at {first_commit[:10]}"
    assert _status(loop) == before  # same updated_at: the row was not written
    assert _history(sync_store) == 1 and sync_store.current_lock() is None


def test_a_commit_that_changes_nothing_is_synced_without_an_apply(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop()
    loop.run_pass()
    docs = remote.commit({"README.md": "more words\n"}, "docs only")
    result = loop.run_pass()
    assert result.outcome == "synced" and result.changed
    assert _status(loop).applied_revision == docs and _history(sync_store) == 1


def test_the_project_path_and_branch_are_followed(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore
) -> None:
    remote.commit(
        {"envs/prod/wp.yaml": project_yaml({"prod": 2}), "envs/prod/flows/hello.py": FLOW},
        "prod",
        branch="live",
    )
    loop = make_loop(branch="live", path="envs/prod")
    assert loop.run_pass().outcome == "applied"
    assert sync_store.get_work_pool("prod").concurrency_limit == 2
    assert str(_status(loop).key).endswith("@live/envs/prod")


def test_a_file_url_is_fetched(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop(repo=remote.bare.as_uri())
    assert loop.run_pass().outcome == "applied"
    assert _status(loop).applied_revision == first_commit


# ------------------------------------------------------------------------------------------ failures


def test_an_invalid_commit_fails_with_its_diagnostic_and_the_next_valid_one_recovers(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop()
    loop.run_pass()
    bad_yaml = project_yaml({"p": 4}).replace("concurrency_limit: 4", "concurrency_limit: lots")
    bad = remote.commit({"wp.yaml": bad_yaml}, "oops")
    result = loop.run_pass()
    assert result.outcome == "failed"
    status = _status(loop)
    assert status.phase is SyncPhase.FAILED and status.reason == "InvalidConfig"
    assert status.message.startswith("wp.yaml:5:24: error:"), (
        status.message
    )  # file:line, relative to the repository
    assert "concurrency_limit" in status.message
    assert status.attempted_revision == bad and status.applied_revision == first_commit
    assert sync_store.get_work_pool("p").concurrency_limit == 4 and _history(sync_store) == 1

    fixed = remote.commit({"wp.yaml": project_yaml({"p": 5})}, "fix")
    assert loop.run_pass().outcome == "applied"
    status = _status(loop)
    assert status.phase is SyncPhase.SYNCED and status.applied_revision == fixed and status.failures == 0
    assert [a["result"] for a in status.attempts] == ["Applied", "InvalidConfig", "Applied"]


def test_a_failing_revision_is_not_attempted_again_until_asked(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore
) -> None:
    remote.commit({"wp.yaml": "project: demo\nwork_pools: 7\n"}, "broken")
    loop = make_loop(interval=0.02)
    passes, _ = _run_for(loop, 1.0, passes=20)
    assert passes >= 20
    status = _status(loop)
    assert status.phase is SyncPhase.FAILED and status.failures == 1
    assert len(status.attempts) == 1  # one attempt, not one per interval

    sync_store.control_sync(loop.settings.key, request=True, now=status.last_attempt_at)  # `wp sync now`
    assert _status(loop).request_pending
    assert loop.run_pass().outcome == "failed"
    status = _status(loop)
    assert status.failures == 2 and len(status.attempts) == 2 and not status.request_pending


def test_a_failing_revision_backs_off_while_the_live_state_keeps_changing(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore
) -> None:
    from reconciler.model import WorkPool

    remote.commit({"wp.yaml": "project: demo\nwork_pools: 7\n"}, "broken")
    loop = make_loop(interval=0.02, max_backoff=10.0)
    sync_store.create_work_pool(WorkPool(name="by-hand"))
    stop = threading.Event()

    def edit() -> None:  # someone changes the store all the time: every pass sees a new live state
        n = 0
        while not stop.is_set():
            n += 1
            sync_store.update_work_pool("by-hand", description=f"edit {n}")
            time.sleep(0.01)

    editor = threading.Thread(target=edit)
    editor.start()
    try:
        passes, elapsed = _run_for(loop, 2.0, passes=30)
    finally:
        stop.set()
        editor.join()
    attempts = _status(loop).failures
    # retries after 0.02, 0.04, 0.08, ... s: log2 of the time run, where a hot loop would attempt at every pass
    bound = math.floor(math.log2(elapsed / 0.02 + 1)) + 1
    assert 2 <= attempts <= bound < passes / 2, (attempts, bound, passes)


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_seconds(n, 10, 60) for n in range(6)] == [0, 10, 20, 40, 60, 60]


def test_git_unreachable_changes_nothing_in_the_store_and_the_loop_recovers(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str, tmp_path: Path
) -> None:
    loop = make_loop()
    loop.run_pass()
    before, snapshot = _status(loop), sync_store.snapshot()
    moved = tmp_path / "gone.git"
    shutil.move(remote.bare, moved)
    result = loop.run_pass()
    assert result.outcome == "unreachable"
    assert loop.fetch_error is not None and str(remote.bare) in loop.fetch_error
    assert _status(loop) == before and sync_store.snapshot() == snapshot and _history(sync_store) == 1

    shutil.move(moved, remote.bare)
    later = remote.commit({"wp.yaml": project_yaml({"p": 9})}, "after the outage")
    assert loop.run_pass().outcome == "applied"
    assert loop.fetch_error is None and _status(loop).applied_revision == later


def test_a_branch_that_does_not_exist_is_unreachable(
    make_loop: MakeLoop, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop(branch="nope")
    assert loop.run_pass().outcome == "unreachable"
    assert sync_store.list_sync_status() == []


def test_a_held_lock_fails_the_attempt_and_it_is_retried(
    make_loop: MakeLoop, sync_store: SqlStore, first_commit: str
) -> None:
    held = sync_store.acquire_lock("someone else", "apply demo")
    loop = make_loop(lock_timeout=0.0)
    assert loop.run_pass().outcome == "failed"
    status = _status(loop)
    assert status.reason == "LockHeld" and "someone else" in status.message
    assert sync_store.list_work_pools() == []
    sync_store.release_lock(held.id)
    time.sleep(backoff_seconds(1, loop.settings.interval, loop.settings.max_backoff))
    assert loop.run_pass().outcome == "applied"  # same revision, same live state: a lock is worth retrying


# ------------------------------------------------------------------------------------------ drift, prune


def test_drift_is_reported_and_left_without_self_heal(
    make_loop: MakeLoop, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop()
    loop.run_pass()
    sync_store.update_work_pool("p", concurrency_limit=99)
    result = loop.run_pass()
    assert result.outcome == "out-of-sync"
    status = _status(loop)
    assert status.phase is SyncPhase.OUT_OF_SYNC and status.drift == ("work_pool.p",)
    assert "work_pool.p" in status.message and "--self-heal" in status.message
    assert sync_store.get_work_pool("p").concurrency_limit == 99 and _history(sync_store) == 1
    assert not loop.run_pass().changed  # reported once, not rewritten every pass


def test_drift_is_reverted_with_self_heal_and_ignore_changes_is_respected(
    make_loop: MakeLoop, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop(self_heal=True)
    loop.run_pass()
    sync_store.update_work_pool("p", paused=True)  # `ignore_changes: [paused]`: not drift to revert
    assert loop.run_pass().outcome == "synced"
    assert sync_store.get_work_pool("p").paused is True
    sync_store.update_work_pool("p", concurrency_limit=99)
    result = loop.run_pass()
    assert result.outcome == "applied" and _status(loop).reason == "SelfHealed"
    assert sync_store.get_work_pool("p").concurrency_limit == 4
    assert sync_store.get_work_pool("p").paused is True
    assert _history(sync_store) == 2


def test_prune_only_with_prune(make_loop: MakeLoop, remote: Remote, sync_store: SqlStore) -> None:
    remote.commit({"wp.yaml": project_yaml({"p": 4}, ("a", "b", "c")), "flows/hello.py": FLOW}, "three")
    keep, prune = make_loop(), make_loop(prune=True)
    keep.run_pass()
    remote.commit({"wp.yaml": project_yaml({"p": 4}, ("a", "b"))}, "drop c")
    assert keep.run_pass().outcome == "synced"
    assert {d.name for d in sync_store.list_deployments()} == {"a", "b", "c"}
    # the same sync restarted with --prune: it prunes at the next revision (at the synced one, a pending
    # delete is shown as OutOfSync, like any difference, unless --self-heal)
    assert prune.run_pass().outcome == "out-of-sync"
    assert _status(prune).drift == ("deployment.say-hello/c",)
    remote.commit({"README.md": "pruned\n"}, "next")
    assert prune.run_pass().outcome == "applied"
    assert {d.name for d in sync_store.list_deployments()} == {"a", "b"}


def test_a_protected_object_is_never_pruned(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore
) -> None:
    text = project_yaml({"p": 4, "legacy": 1}).replace(
        "  - name: legacy\n    type: process\n", "  - name: legacy\n    type: process\n    protect: true\n"
    )
    remote.commit({"wp.yaml": text, "flows/hello.py": FLOW}, "with legacy")
    loop = make_loop(prune=True)
    assert loop.run_pass().outcome == "applied"
    remote.commit({"wp.yaml": project_yaml({"p": 4})}, "drop legacy")
    assert loop.run_pass().outcome == "failed"
    status = _status(loop)
    assert status.reason == "PlanRefused" and "protect" in status.message
    assert "legacy" in {p.name for p in sync_store.list_work_pools()}


def test_a_mass_delete_is_refused(make_loop: MakeLoop, remote: Remote, sync_store: SqlStore) -> None:
    remote.commit(
        {"wp.yaml": project_yaml({"p": 4, "q": 4, "r": 4}, ("a", "b", "c")), "flows/hello.py": FLOW}, "many"
    )
    loop = make_loop(prune=True)
    loop.run_pass()
    remote.commit({"wp.yaml": project_yaml({"p": 4}, ())}, "almost nothing")
    assert loop.run_pass().outcome == "failed"
    status = _status(loop)
    assert status.reason == "PlanRefused" and "mass-delete" in status.message
    assert len(sync_store.list_deployments()) == 3


# ------------------------------------------------------------------------------------------ controls


def test_suspend_stops_applying_but_not_fetching_and_resume_applies(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop()
    loop.run_pass()
    now = _status(loop).updated_at
    assert now is not None
    sync_store.control_sync(None, suspend=True, now=now)
    newer = remote.commit({"wp.yaml": project_yaml({"p": 6})}, "while suspended")
    assert loop.run_pass().outcome == "suspended"
    status = _status(loop)
    assert status.phase is SyncPhase.SUSPENDED and status.fetched_revision == newer
    assert status.applied_revision == first_commit and sync_store.get_work_pool("p").concurrency_limit == 4
    sync_store.control_sync(loop.settings.key, suspend=False, now=now)
    assert loop.run_pass().outcome == "applied"
    assert sync_store.get_work_pool("p").concurrency_limit == 6


def test_a_request_in_the_store_wakes_a_waiting_loop(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, first_commit: str
) -> None:
    loop = make_loop(interval=60.0)
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while sync_store.get_sync_status(loop.settings.key) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        newer = remote.commit({"wp.yaml": project_yaml({"p": 8})}, "now please")
        started = time.monotonic()
        sync_store.control_sync(loop.settings.key, request=True, now=_status(loop).updated_at)  # type: ignore[arg-type]
        while _status(loop).applied_revision != newer and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(loop).applied_revision == newer
        assert time.monotonic() - started < 15  # not the 60 s interval
    finally:
        loop.stop()
        thread.join(10)


def test_two_loops_on_one_store_never_interleave_applies(
    make_loop: MakeLoop, remote: Remote, sync_store: SqlStore, tmp_path: Path
) -> None:
    a, b = make_loop(), make_loop(store=SqlStore(sync_store.url))
    for limit in (3, 4, 5):
        remote.commit(
            {"wp.yaml": project_yaml({"p": limit}, ("a", "b")), "flows/hello.py": FLOW}, f"limit {limit}"
        )
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def run(loop: SyncLoop, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            outcomes.append(loop.run_pass().outcome)

        threads = [threading.Thread(target=run, args=(loop, barrier, outcomes)) for loop in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert "failed" not in outcomes, (outcomes, _status(a).message)
        assert sync_store.get_work_pool("p").concurrency_limit == limit
    # one apply per revision, whichever loop made it; the other found nothing left to do
    assert _history(sync_store) == 3


def test_a_store_that_cannot_be_reached_is_reported_not_fatal(make_loop: MakeLoop, first_commit: str) -> None:
    from reconciler.store.client import HttpStore

    with HttpStore("http://127.0.0.1:9") as gone:  # nothing listens on the discard port
        loop = make_loop(store=gone)
        result = loop.run_pass()
    assert result.outcome == "store-error" and "cannot reach the wp server" in result.message
