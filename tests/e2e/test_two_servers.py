"""Two `wp server` processes on one PostgreSQL store, side by side (as deploy/kubernetes runs them for
availability), each with its scheduler, late-run marking and dead-worker recovery: no scheduled run is created
twice, no run is claimed twice by workers polling either server, and a dead worker's runs are recovered
(RUNNING → CRASHED, PENDING → SCHEDULED) exactly once, with a live worker's claims left alone."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from wp_cli import WP_SCRIPT, run_wp

from reconciler.model import FlowRun
from reconciler.store.open import open_store
from reconciler.store.sql import SqlStore
from tests.wp_server import free_port

pytestmark = pytest.mark.postgres

PROJECT = """
project: ha
work_pools:
  - name: ha
    type: process
deployments:
  - name: every-minute
    entrypoint: flows/f.py:f
    work_pool: {name: ha}
    schedules:
      - {slug: minutely, interval: 60}
"""


@pytest.fixture
def two_servers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "f.py").write_text("def f():\n    print('ran')\n")
    (project / "wp.yaml").write_text(PROJECT)
    env = {"WP_DATABASE_URL": postgres_url, "WP_HOME": str(tmp_path)}
    assert run_wp("apply", project, "--auto-approve", env=env).code == 0
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | env
    servers, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [str(WP_SCRIPT), "server", "start", "--port", str(port)],
                    env=child_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_healthy(url)
        yield postgres_url, urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(3)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_healthy(url: str) -> None:
    # a server starts in seconds; a busy 2-core CI machine may take far longer
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


def _due_run(store: SqlStore, i: int) -> FlowRun:
    run_id = str(uuid.uuid4())
    return store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"due-{i}",
            flow="f",
            deployment="f/every-minute",
            work_pool="ha",
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC) - timedelta(seconds=1),
        )
    )


def test_two_servers_schedule_once_never_claim_twice_and_recover_dead_workers(
    two_servers: tuple[str, list[str]],
) -> None:
    url, servers = two_servers
    store = SqlStore(url)
    try:
        # both schedulers tick (every 5 s) several times over the same schedule
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(store.list_flow_runs(work_pool="ha", limit=1000)) < 61:
            time.sleep(0.5)
        time.sleep(6)  # at least one more tick of each scheduler over the same horizon
        scheduled = store.list_flow_runs(work_pool="ha", limit=1000)
        assert len(scheduled) >= 61  # at least 1 h ahead of a 60 s interval
        starts = Counter((r.deployment, r.expected_start_time) for r in scheduled)
        assert max(starts.values()) == 1, "a scheduled run was created twice"

        due = {_due_run(store, i).id for i in range(60)}
        claimed: list[str] = []
        lock = threading.Lock()

        def claimer(n: int) -> None:
            client = open_store({"WP_API_URL": servers[n % 2]})
            name = f"w{n}"
            client.heartbeat_worker("ha", name, interval=30, now=datetime.now(UTC))
            while True:
                now = datetime.now(UTC)
                got = client.claim_runs("ha", name, limit=3, scheduled_before=now, now=now)
                if not got:
                    return
                with lock:
                    claimed.extend(r.id for r in got)

        threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        counts = Counter(claimed)
        assert [run for run, n in counts.items() if n > 1] == [], "a run was claimed twice"
        assert due <= set(counts)  # and none was lost
        _dead_worker_recovery(store, servers)
    finally:
        store.close()


def _dead_worker_recovery(store: SqlStore, servers: list[str]) -> None:
    """A dead worker's runs are recovered, and a live worker's claims kept, with both servers recovering."""
    for i in range(4):
        _due_run(store, i)
    dead = open_store({"WP_API_URL": servers[0]})
    now = datetime.now(UTC)
    dead.heartbeat_worker("ha", "doomed", interval=0.5, now=now)
    held = dead.claim_runs("ha", "doomed", limit=2, scheduled_before=now, now=now)
    assert len(held) == 2
    running, pending = held
    dead.set_run_state(running.id, "RUNNING", now=now)
    # the doomed worker stops heartbeating; a live one (through the other server) keeps its claims
    live = open_store({"WP_API_URL": servers[1]})
    live.heartbeat_worker("ha", "alive", interval=1, now=datetime.now(UTC))
    kept = live.claim_runs("ha", "alive", limit=2, scheduled_before=datetime.now(UTC), now=datetime.now(UTC))
    assert len(kept) == 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        live.heartbeat_worker("ha", "alive", interval=1, now=datetime.now(UTC))
        if store.get_flow_run(running.id).state == "CRASHED":
            break
        time.sleep(0.3)
    assert store.get_flow_run(running.id).state == "CRASHED"
    assert "heartbeats" in (store.get_flow_run(running.id).state_message or "")
    recovered = store.get_flow_run(pending.id)
    assert recovered.state in ("SCHEDULED", "LATE") and recovered.worker is None
    for run in kept:
        after = store.get_flow_run(run.id)
        assert (after.state, after.worker) == ("PENDING", "alive")
