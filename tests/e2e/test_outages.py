"""Outages a user lives through (issue 10, items 8 and 9): a `wp server` killed with kill -9 mid-run and
restarted, and a PostgreSQL restarted under a server while a worker claims. Real server, real worker, real
flow-run processes; the harness is test_runtime_scenarios.py's.

What must hold: a healthy run is not CRASHED because the server could not hear its heartbeats while it was down,
the run ends COMPLETED, a limit of 1 is never exceeded, and the server never answers 500 for a database that is
briefly gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_runtime_scenarios import FINAL, Runtime, finished, new_run, project, wait_for  # noqa: F401
from wp_cli import run_wp

from tests.conftest import _as_postgres_user, _pg_bin
from tests.wp_server import free_port

ONE_SLOT = """
project: outages
work_pools:
  - name: p
    type: process
    concurrency_limit: 1
deployments:
  - {name: slow, entrypoint: flows/work.py:work, work_pool: {name: p}}
"""


@pytest.fixture
def one_slot(project: Path) -> Path:  # noqa: F811
    (project / "wp.yaml").write_text(ONE_SLOT)
    return project


def _server_killed_mid_run(root: Path, store_env: dict[str, str]) -> None:
    rt = Runtime(root, store_env)
    try:
        rt.start_server()
        assert run_wp("apply", root, "--auto-approve", env=dict(rt.client_env())).code == 0
        rt.start_worker("steady", "--heartbeat-interval", "1")
        with rt.api() as api:
            first = new_run(api, "work/slow", "default", seconds=10, tag="first")
            wait_for(lambda: api.get_flow_run(first.id).state == "RUNNING", "the first run to start")
            second = new_run(api, "work/slow", "default", seconds=0, tag="second")
        assert rt.server is not None
        rt.server.send_signal(signal.SIGKILL)
        rt.server.wait(timeout=10)
        time.sleep(4.0)  # four heartbeat intervals the server cannot hear
        rt.start_server()
        with rt.api() as api:
            wait_for(lambda: finished(api, [first, second]), "both runs to finish after the restart", 60)
            done = api.get_flow_run(first.id)
            assert done.state == "COMPLETED", done.state_message
            later = api.get_flow_run(second.id)
            assert later.state == "COMPLETED", later.state_message
            # a limit of 1: the second run started only once the first had ended
            assert done.end_time is not None and later.start_time is not None
            assert later.start_time >= done.end_time, (done.end_time, later.start_time)
            messages = [line.message for line in api.read_logs(first.id)]
        assert "done first" in messages, messages
        assert "heartbeats" not in rt.worker_log("steady"), rt.worker_log("steady")
    finally:
        rt.close()


@pytest.mark.slow
def test_a_server_killed_for_four_heartbeats_crashes_no_healthy_run_on_sqlite(
    one_slot: Path, tmp_path: Path
) -> None:
    _server_killed_mid_run(one_slot, {"WP_HOME": str(tmp_path / "home")})


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_killed_for_four_heartbeats_crashes_no_healthy_run_on_postgres(
    one_slot: Path, postgres_url: str
) -> None:
    _server_killed_mid_run(one_slot, {"WP_DATABASE_URL": postgres_url})


# ---------------------------------------------------------------------------------------------- item 9


@dataclass
class Cluster:
    """A PostgreSQL cluster of this test's own, so that restarting it disturbs no other test."""

    bin_dir: Path
    data: Path
    options: str
    url: str

    def pg_ctl(self, *args: str) -> None:
        argv = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(_as_postgres_user(argv), check=True, capture_output=True, timeout=60)

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "-o", self.options, "-l", str(self.data.parent / "log"), "restart")


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        message = "PostgreSQL server binaries are not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="wp-outages-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(_as_postgres_user(initdb), check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    cluster = Cluster(
        bin_dir, root / "data", options, f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    )
    cluster.pg_ctl("-w", "-o", options, "-l", str(root / "log"), "start")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_restart_under_a_claiming_worker_gives_no_500_and_loses_no_run(
    project: Path,  # noqa: F811
    own_postgres: Cluster,
) -> None:
    rt = Runtime(project, {"WP_DATABASE_URL": own_postgres.url})
    try:
        rt.start_server()
        assert run_wp("apply", project, "--auto-approve", env=dict(rt.client_env())).code == 0
        rt.start_worker("steady", "--heartbeat-interval", "1")
        with rt.api() as api:
            runs = [new_run(api, "work/low", "low", seconds=0.2, tag=f"r{i}") for i in range(6)]
            wait_for(lambda: api.get_flow_run(runs[0].id).state in FINAL, "the first run to finish")
        own_postgres.restart()  # the server's pooled connections all die under its claims and heartbeats
        with rt.api() as api:
            runs += [new_run(api, "work/low", "low", seconds=0.2, tag=f"s{i}") for i in range(4)]
            wait_for(lambda: finished(api, runs), "every run to finish after the restart", 60)
            final = [api.get_flow_run(r.id) for r in runs]
        assert {r.state for r in final} == {"COMPLETED"}, [(r.name, r.state, r.state_message) for r in final]
        log = rt.server_log()
        assert not re.search(r'HTTP/1\.1" 5\d\d', log) or " 500 " not in log, log
        assert '" 500' not in log and "InternalError" not in log, log
        assert "Traceback" not in rt.worker_log("steady"), rt.worker_log("steady")
    finally:
        rt.close()
