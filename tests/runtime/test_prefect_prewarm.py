"""A process worker pre-warms the Prefect of its pool's deployments: the flow environment's warm server is up
before the first run is claimed, and that first run is forked from it.

Which deployments get one is checked without Prefect (`environment_of`); the rest runs a real worker against the
Prefect venv of tests/prefect_env.sh, each test with its own TMPDIR (so its own warm servers, killed after it).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import Deployment, WorkPool
from reconciler.runtime.prewarm import environment_of
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.sql import SqlStore
from tests import polling
from tests.runtime.prefect_venv import prefect_python, runner_env
from tests.runtime.test_prefect_flows import add_deployment, add_run, pid_alive

pytestmark = pytest.mark.xdist_group("prefect-flows")

FLOW = textwrap.dedent(
    """
    import os
    from prefect import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(log_prints=True)
    def family(x: int = 1) -> int:
        print(f"flow pid {os.getpid()} parent {os.getppid()} result {double(x)}")
        return x
    """
)
PLAIN = "def hello():\n    print('hello')\n"


def process_pool() -> WorkPool:
    return WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))


def deployment(entrypoint: str, job_variables: dict[str, Any] | None = None, **fields: Any) -> Deployment:
    return Deployment(
        flow="f",
        name="d",
        entrypoint=entrypoint,
        work_pool="local",
        job_variables=job_variables or {},
        **fields,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flow.py").write_text(FLOW)
    (tmp_path / "flows" / "plain.py").write_text(PLAIN)
    return tmp_path


# ---------------------------------------------------------------------------------------------- which deployments


def test_a_prefect_file_entrypoint_is_pre_warmed_in_the_environment_its_run_gets(project: Path) -> None:
    job_variables = {
        "command": "/opt/flows/bin/python -m reconciler.runtime.entry",
        "env": {"PREFECT_LOGGING_LEVEL": "DEBUG", "PYTHONPATH": "/src"},
    }
    worker_env = {"PREFECT_HOME": "/home/w/.prefect", "PATH": "/usr/bin"}
    found = environment_of(
        process_pool(), deployment("flows/flow.py:family", job_variables), "w1", worker_env, str(project)
    )
    assert found is not None
    assert found.python == "/opt/flows/bin/python" and found.cwd == str(project)
    env = dict(found.env)
    # the worker's environment under the job's, rendered as a run's would be: the server's key is the run's
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG" and env["PYTHONPATH"] == "/src"
    assert env["PREFECT_HOME"] == "/home/w/.prefect"
    assert found.argv() == ["/opt/flows/bin/python", "-m", "reconciler.runtime.prefect_warm", "--prewarm"]
    default = environment_of(process_pool(), deployment("flows/flow.py:family"), "w1", {}, str(project))
    # the default command: the worker's python
    assert default is not None and default.python == sys.executable


@pytest.mark.parametrize(
    ("why", "pool_type", "entrypoint", "job_variables", "pull_steps"),
    [
        ("a plain function", "process", "flows/plain.py:hello", {}, []),
        ("a module entrypoint", "process", "flows.flow:family", {}, []),
        ("WP_PREFECT_WARM=0", "process", "flows/flow.py:family", {"env": {"WP_PREFECT_WARM": "0"}}, []),
        (
            "pip_install_requirements",
            "process",
            "flows/flow.py:family",
            {},
            [{"prefect.deployments.steps.pip_install_requirements": {"requirements_file": "r.txt"}}],
        ),
        ("a custom command", "process", "flows/flow.py:family", {"command": "bash run.sh"}, []),
        ("a docker pool", "docker", "flows/flow.py:family", {}, []),
        ("a kubernetes pool", "kubernetes", "flows/flow.py:family", {}, []),
        ("a missing file", "process", "flows/gone.py:family", {}, []),
    ],
)
def test_no_server_is_pre_warmed_for(
    project: Path,
    why: str,
    pool_type: str,
    entrypoint: str,
    job_variables: dict[str, Any],
    pull_steps: list[dict[str, Any]],
) -> None:
    pool = WorkPool(name="local", type=pool_type, base_job_template=default_base_job_template(pool_type))
    chosen = deployment(entrypoint, job_variables, pull_steps=pull_steps)
    assert environment_of(pool, chosen, "w1", {}, str(project)) is None, why


# ---------------------------------------------------------------------------------------------- a real worker


class Workers:
    """Workers on one store, each in a thread, with their output; their warm servers killed at the end."""

    def __init__(self, store: SqlStore, project: Path) -> None:
        self.store = store
        self.project = project
        self.outs: dict[str, io.StringIO] = {}
        self._running: list[tuple[Worker, threading.Thread]] = []

    def start(self, name: str, **options: Any) -> None:
        out = self.outs[name] = io.StringIO()
        opts = {"pool": "local", "name": name, "poll_interval": 0.1, **options}
        worker = Worker(self.store, WorkerOptions(**opts), cwd=str(self.project), out=out)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self._running.append((worker, thread))

    def said(self, name: str) -> str:
        return self.outs[name].getvalue()

    def stop(self) -> None:
        for worker, _ in self._running:
            worker.request_stop()
            worker.request_stop()
        for _, thread in self._running:
            thread.join(30)


def warm_pid(said: str) -> int | None:
    assert "could not pre-warm" not in said, said
    for line in said.splitlines():
        if line.startswith("Prefect is warm for ") and "server pid " in line:
            return int(line.rsplit("server pid ", 1)[1])
    return None


wait_for = partial(polling.wait_for, timeout=120.0)


@pytest.fixture
def real(project: Path) -> Iterator[tuple[SqlStore, Workers, dict[str, Any]]]:
    python = prefect_python()
    env = {
        **runner_env(),
        "PREFECT_HOME": str(project / "prefect-home"),
        "TMPDIR": str(project),  # this test's own warm servers
        "WP_PREFECT_WARM_IDLE": "30",
    }
    job_variables = {"command": f"{python} -m reconciler.runtime.entry", "env": env}
    store = SqlStore(f"sqlite:///{project / 'wp.db'}")
    store.create_work_pool(process_pool())
    workers = Workers(store, project)
    try:
        yield store, workers, job_variables
    finally:
        workers.stop()
        for pid in servers(project):
            os.kill(pid, signal.SIGTERM)
        store.close()


def servers(tmp: Path) -> list[int]:
    """The pids of the warm servers of sockets under `tmp` (their command line names the socket)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it just ended
            continue
        if b"reconciler.runtime.prefect_warm" in argv and any(a.startswith(f"{tmp}/".encode()) for a in argv):
            found.append(int(proc.name))
    return sorted(found)


def test_a_worker_pre_warms_at_start_and_the_first_run_is_forked_from_that_server(
    real: tuple[SqlStore, Workers, dict[str, Any]], project: Path
) -> None:
    store, workers, job_variables = real
    family = add_deployment(store, "family", "flows/flow.py:family", job_variables)
    add_deployment(store, "plain", "flows/plain.py:hello", job_variables)
    # two workers on one machine: one server for the flow environment, which both name
    workers.start("w1", heartbeat_interval=0.5)
    workers.start("w2")
    pid = wait_for(lambda: warm_pid(workers.said("w1")))
    assert wait_for(lambda: warm_pid(workers.said("w2"))) == pid
    assert "claimed" not in workers.said("w1") + workers.said("w2")  # up before any run was claimed
    assert pid_alive(pid)
    # the other worker's server, if it started one, found the first holding the lock and left, unwarmed
    wait_for(lambda: servers(project) == [pid])
    assert "plain/d" not in workers.said("w1")  # a plain function gets no server

    run = add_run(store, family, {"x": 21})
    final = wait_for(lambda: (r := store.get_flow_run(run.id)).state in ("COMPLETED", "FAILED") and r)
    logs = [line.message for line in store.read_logs(run.id)]
    assert final.state == "COMPLETED", logs
    printed = next(line for line in logs if "flow pid " in line)
    assert f"parent {pid} result 42" in printed  # the first run was forked from the pre-warmed server
    assert servers(project) == [pid]

    # a deployment applied while the worker runs is seen at its next heartbeat (same environment: same server)
    add_deployment(store, "late", "flows/flow.py:family", job_variables)
    wait_for(lambda: "Prefect is warm for late/d" in workers.said("w1"))
    assert f"Prefect is warm for late/d: server pid {pid}" in workers.said("w1")


def test_with_prefect_warm_off_no_server_starts(
    real: tuple[SqlStore, Workers, dict[str, Any]], project: Path
) -> None:
    store, workers, job_variables = real
    job_variables = {**job_variables, "env": {**job_variables["env"], "WP_PREFECT_WARM": "0"}}
    family = add_deployment(store, "family", "flows/flow.py:family", job_variables)
    run = add_run(store, family, {"x": 2})
    workers.start("w1", run_once=True)
    final = wait_for(lambda: (r := store.get_flow_run(run.id)).state in ("COMPLETED", "FAILED") and r)
    logs = [line.message for line in store.read_logs(run.id)]
    assert final.state == "COMPLETED", logs
    started = next(line for line in logs if " as process " in line)
    printed = next(line for line in logs if "flow pid " in line)
    assert f"flow pid {started.rsplit(' ', 1)[1]} " in printed  # ran cold, in the worker's own child
    assert "Prefect is warm" not in workers.said("w1")
    assert servers(project) == [] and not list(project.glob("wp-prefect-warm-*/*.sock"))
