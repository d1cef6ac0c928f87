"""A lock left by a dead apply (issue 10, item 10): the lease records its holder's host and process, so a
`wp apply` killed with kill -9 mid-apply does not block the next one for the lease's ten minutes; the next apply
on the same host takes the lock over, naming the old holder. A lease longer than an hour is refused."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from wp_cli import Wp

from reconciler.api import create_app
from reconciler.errors import LockHeldError, ValidationError
from reconciler.store.client import HttpStore
from reconciler.store.holder import HolderProcess, this_process
from reconciler.store.sql import SqlStore

DEPLOYMENTS = 800  # enough that the write under the lock takes a while to catch the apply in it


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


def _lock_rows(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db, timeout=0.05) as conn:
            return list(conn.execute("SELECT lock_id, holder FROM locks"))
    except sqlite3.Error:  # the database is still being created
        return []


@pytest.mark.slow
def test_an_apply_killed_mid_apply_leaves_a_lock_the_next_apply_takes_over(
    wp: Wp, home: Path, tmp_path: Path
) -> None:
    root = _big_project(tmp_path / "big")
    db = home / "wp.db"
    env = {**os.environ, "WP_HOME": str(home)}
    victim = subprocess.Popen(
        ["wp", "apply", str(root), "--auto-approve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _lock_rows(db) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)  # mid-apply: it holds the lease
    finally:
        victim.kill()
        victim.wait(timeout=10)
    assert _lock_rows(db), "the apply ended before it could be killed holding the lock"
    store = SqlStore(f"sqlite:///{db}")
    try:
        left = store.current_lock()
        assert left is not None and left.pid == victim.pid and left.host == socket.gethostname()
        assert not store.list_deployments()  # the killed apply changed nothing
    finally:
        store.close()

    again = wp("apply", root, "--auto-approve")
    assert again.code == 0, again.stderr
    message = again.stderr + again.stdout
    assert f"pid {victim.pid}" in message and "took over" in message and left.id in message, message
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
