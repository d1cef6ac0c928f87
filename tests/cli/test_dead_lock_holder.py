"""A lock left by a dead apply (issue 10, item 10): the lease records its holder's host and process, so a
`wp apply` killed with kill -9 mid-apply does not block the next one for the lease's ten minutes; the next apply
on the same host takes the lock over, naming the old holder. A lease longer than an hour is refused."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from wp_cli import ISOLATED, WP_SCRIPT, Wp

from reconciler.api import create_app
from reconciler.errors import LockHeldError, ValidationError
from reconciler.store.client import HttpStore
from reconciler.store.holder import HolderProcess, this_process
from reconciler.store.sql import SqlStore

DEPLOYMENTS = 800  # enough that the write under the lock takes a while to catch the apply in it
ATTEMPTS = 5  # a loaded machine may let an apply commit before the test sees its lease: start it again


def _big_project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "f.py").write_text("def f(x=0):\n    pass\n")
    lines = ["project: big", "work_pools:", "  - {name: p, type: process}", "deployments:"]
    lines += [
        f"  - {{name: d{i}, entrypoint: flows/f.py:f, work_pool: {{name: p}}, parameters: {{x: {i}}}}}"
        for i in range(DEPLOYMENTS)
    ]
    (root / "wp.yaml").write_text("\n".join(lines) + "\n")
    return root


def _rows(db: Path, query: str) -> list[tuple[object, ...]] | None:
    """The rows of `query` as another process sees them (committed ones only: the store is in WAL mode); None
    while the database is still being created or cannot be read at this moment."""
    if not db.exists():  # connecting would create it under the apply
        return None
    try:
        with sqlite3.connect(db, timeout=0.05) as conn:
            return list(conn.execute(query))
    except sqlite3.Error:
        return None


def _lock_rows(db: Path) -> list[tuple[object, ...]]:
    return _rows(db, "SELECT lock_id, holder FROM locks") or []


def _kill_while_it_holds_the_lease(root: Path, home: Path) -> int | None:
    """Start `wp apply` and kill it with kill -9 while it holds the lease and has committed none of its write.
    Returns its pid; None when the apply was seen holding the lease only after its write had committed (or
    had ended), which a loaded machine can make happen: the caller tries again with a fresh store."""
    db = home / "wp.db"
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED} | {"WP_HOME": str(home)}
    victim = subprocess.Popen(
        [str(WP_SCRIPT), "apply", str(root), "--auto-approve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # no deadline of our own: the apply either takes the lease or ends (a hung one meets pytest's timeout)
        while not _lock_rows(db) and victim.poll() is None:
            time.sleep(0.002)
        # Frozen from here on: what it has committed is all it will ever commit. Only then is it judged, so a
        # poll that saw the lease late (after the write's commit, before the release) cannot pass for mid-apply.
        victim.send_signal(signal.SIGSTOP)
        written = _rows(db, "SELECT count(*) FROM deployments")
        caught = victim.poll() is None and bool(_lock_rows(db)) and written == [(0,)]
    finally:
        victim.kill()
        victim.wait(timeout=10)
    return victim.pid if caught else None


@pytest.mark.slow
def test_an_apply_killed_mid_apply_leaves_a_lock_the_next_apply_takes_over(
    wp: Wp, home: Path, tmp_path: Path
) -> None:
    root = _big_project(tmp_path / "big")
    db = home / "wp.db"
    for _attempt in range(ATTEMPTS):
        shutil.rmtree(home, ignore_errors=True)  # a fresh store for each attempt
        killed = _kill_while_it_holds_the_lease(root, home)
        if killed is not None:
            break
    else:
        pytest.fail(
            f"in {ATTEMPTS} attempts, no apply was caught holding the lock before its write committed"
        )
    store = SqlStore(f"sqlite:///{db}")
    try:
        left = store.current_lock()
        assert left is not None and left.pid == killed and left.host == socket.gethostname()
        assert not store.list_deployments()  # the killed apply changed nothing
    finally:
        store.close()

    again = wp("apply", root, "--auto-approve")
    assert again.code == 0, again.stderr
    message = again.stderr + again.stdout
    assert f"pid {killed}" in message and "took over" in message and left.id in message, message
    store = SqlStore(f"sqlite:///{db}")
    try:
        assert len(store.list_deployments()) == DEPLOYMENTS
        assert store.current_lock() is None
    finally:
        store.close()


def test_a_live_holder_on_this_host_is_never_taken_over(wp: Wp, live_store: SqlStore, demo: Path) -> None:
    lock = live_store.acquire_lock("alice@here", "apply other", process=this_process())  # this test: alive
    refused = wp("apply", demo, "--auto-approve")
    assert refused.code == 3
    assert lock.id in refused.stderr and f"pid {os.getpid()}" in refused.stderr


def test_a_holder_on_another_host_is_never_judged(wp: Wp, live_store: SqlStore, demo: Path) -> None:
    elsewhere = HolderProcess(host="some-other-host", pid=2**22 + 1, started="0")  # no such pid here
    lock = live_store.acquire_lock("bob@there", "apply other", process=elsewhere)
    refused = wp("apply", demo, "--auto-approve")
    assert refused.code == 3
    assert lock.id in refused.stderr and "some-other-host" in refused.stderr


def test_a_lease_longer_than_an_hour_is_refused(live_store: SqlStore) -> None:
    with pytest.raises(ValidationError, match="at most 3600"):
        live_store.acquire_lock("alice", "apply", ttl=3601)
    with TestClient(create_app(live_store, api_key=None)) as client:
        six_days = client.post("/lock", json={"holder": "a", "operation": "apply", "ttl": 6 * 86400})
        assert six_days.status_code == 422, six_days.text
        assert six_days.json()["error"]["path"] == "ttl"
        api = HttpStore("http://testserver", client=client)
        lock = api.acquire_lock("alice", "apply", ttl=3600, process=this_process())
        assert (lock.host, lock.pid) == (socket.gethostname(), os.getpid())
        current = api.current_lock()
        assert current is not None and current.started == this_process().started
        with pytest.raises(LockHeldError, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            api.acquire_lock("bob", "apply")
    assert live_store.current_lock() is not None
    assert live_store.current_lock().expires_at > datetime.now(UTC)  # type: ignore[union-attr]
