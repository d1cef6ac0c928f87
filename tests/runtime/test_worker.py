"""The worker with real processes and a real SQLite store in a temp dir."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.executor_choice import WorkerSetupError
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests import polling

FLOWS = textwrap.dedent(
    """
    import sys, time

    def hello(name="world"):
        print(f"hello {name}")
        print("to stderr", file=sys.stderr)

    def boom():
        raise ValueError("the flow broke")

    def sleepy(seconds=30):
        print("sleeping", flush=True)
        time.sleep(seconds)

    def show_env():
        import os
        print("GREETING=" + os.environ.get("GREETING", "-"))
        print("EXTRA=" + os.environ.get("EXTRA", "-"))

    def suicide():
        import os, signal
        print("about to die", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    opened.create_work_pool(
        WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))
    )
    yield opened
    opened.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "demo.py").write_text(FLOWS)
    return root


def add_deployment(store: SqlStore, function: str, **fields: Any) -> Deployment:
    deployment = Deployment(
        flow=function, name="d", entrypoint=f"flows/demo.py:{function}", work_pool="local", **fields
    )
    plan = Plan(
        project="test", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)
    )
    store.apply(
        plan, ApplyRecord(project="test", actor="tester", summary={"add": 1, "change": 0, "destroy": 0})
    )
    return deployment


def add_run(store: SqlStore, deployment: Deployment, *, start_in: float = 0.0, **fields: Any) -> FlowRun:
    run_id = str(uuid.uuid4())
    run = FlowRun(
        id=run_id,
        name=f"run-{run_id[:6]}",
        flow=deployment.flow,
        deployment=f"{deployment.flow}/{deployment.name}",
        work_pool="local",
        work_queue="default",
        state="SCHEDULED",
        expected_start_time=datetime.now(UTC) + timedelta(seconds=start_in),
        parameters=fields.pop("parameters", deployment.parameters),
        **fields,
    )
    return store.create_flow_run(run)


def make_worker(store: SqlStore, project: Path, **options: Any) -> tuple[Worker, io.StringIO]:
    out = io.StringIO()
    opts = {"pool": "local", "name": "w1", "poll_interval": 0.1, "cancel_check_interval": 0.2, **options}
    return Worker(store, WorkerOptions(**opts), cwd=str(project), out=out), out


wait_for = partial(polling.wait_for, timeout=15.0)


def logs(store: SqlStore, run_id: str) -> list[str]:
    return [line.message for line in store.read_logs(run_id)]


def test_run_completes_and_ships_its_output_as_logs(store: SqlStore, project: Path) -> None:
    deployment = add_deployment(store, "hello", parameters={"name": "wp"})
    run = add_run(store, deployment)
    worker, out = make_worker(store, project, run_once=True)
    worker.run()
    done = store.get_flow_run(run.id)
    assert done.state == "COMPLETED"
    assert done.start_time is not None and done.end_time is not None
    lines = logs(store, run.id)
    assert "hello wp" in lines and "to stderr" in lines
    assert "hello wp" in out.getvalue()  # stream_output defaults to true


def test_failing_function_fails_the_run_with_the_traceback_in_logs(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "boom"))
    worker, _ = make_worker(store, project, run_once=True)
    worker.run()
    done = store.get_flow_run(run.id)
    assert done.state == "FAILED"
    assert done.state_message == "ValueError: the flow broke"
    text = "\n".join(logs(store, run.id))
    assert "Traceback (most recent call last)" in text and 'raise ValueError("the flow broke")' in text


def test_a_killed_flow_process_is_crashed(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "suicide"))
    worker, _ = make_worker(store, project, run_once=True)
    worker.run()
    done = store.get_flow_run(run.id)
    assert done.state == "CRASHED"
    assert "killed by signal 9" in (done.state_message or "")
    assert "about to die" in logs(store, run.id)


def wp(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WP_HOME": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run(["wp", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def infrastructure_pid(store: SqlStore, run_id: str) -> int:
    started = next(m for m in logs(store, run_id) if " as process " in m)
    return int(started.rsplit(" ", 1)[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_stops_the_running_process_within_seconds(
    store: SqlStore, project: Path, tmp_path: Path
) -> None:
    # sleeping far longer than a loaded machine takes to start `wp flow-run cancel` (30 s was not always enough)
    run = add_run(store, add_deployment(store, "sleepy"), parameters={"seconds": 600})
    worker, _ = make_worker(store, project)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "sleeping" in logs(store, run.id), timeout=60)
        pid = infrastructure_pid(store, run.id)
        result = wp(tmp_path, "flow-run", "cancel", run.id)
        assert result.returncode == 0, result.stderr
        # timed from the request being in the store: the worker's part, not the CLI process starting up
        started = time.monotonic()
        wait_for(lambda: store.get_flow_run(run.id).state == "CANCELLED", timeout=10)
        assert time.monotonic() - started < 5
        wait_for(lambda: not pid_alive(pid), timeout=5)
    finally:
        worker.request_stop()
        thread.join(timeout=15)
    assert not thread.is_alive()


def test_cancel_of_a_finished_run_is_refused_clearly(store: SqlStore, project: Path, tmp_path: Path) -> None:
    run = add_run(store, add_deployment(store, "hello"))
    make_worker(store, project, run_once=True)[0].run()
    result = wp(tmp_path, "flow-run", "cancel", run.id)
    assert result.returncode == 1
    assert "already COMPLETED" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_lets_running_work_finish_and_hands_back_runs_not_started(
    store: SqlStore, project: Path, tmp_path: Path
) -> None:
    deployment = add_deployment(store, "sleepy")
    running = add_run(store, deployment, parameters={"seconds": 1.5})
    # inside the prefetch window: claimed, not started. Far enough ahead that a worker slow to start on a loaded
    # machine still claims it before it is due (6 s ahead, it was sometimes started, and ran its 30 s)
    waiting = add_run(store, deployment, start_in=60)
    argv = ["wp", "worker", "start", "--pool", "local", "--name", "w-term", "--poll-interval", "0.1"]
    worker = subprocess.Popen(
        [*argv, "--prefetch-seconds", "120"],
        cwd=project,
        env={**os.environ, "WP_HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: store.get_flow_run(running.id).state == "RUNNING", timeout=60)
        wait_for(lambda: store.get_flow_run(waiting.id).state == "PENDING", timeout=60)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert store.get_flow_run(running.id).state == "COMPLETED"
    handed_back = store.get_flow_run(waiting.id)
    assert handed_back.state == "SCHEDULED" and handed_back.worker is None
    assert "stopped" in out


def test_worker_naming_a_missing_queue_fails_at_start(store: SqlStore, project: Path, tmp_path: Path) -> None:
    worker, _ = make_worker(store, project, queues=("nope",))
    with pytest.raises(
        WorkerSetupError, match=r"work queue 'local/nope' does not exist.*wp work-queue create nope"
    ):
        worker.setup()
    result = wp(tmp_path, "worker", "start", "--pool", "local", "--work-queue", "nope")
    assert result.returncode == 1
    assert "'local/nope' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_worker_on_a_missing_pool_fails_at_start(store: SqlStore, project: Path) -> None:
    worker, _ = make_worker(store, project, pool="ghost")
    with pytest.raises(WorkerSetupError, match=r"work pool 'ghost' does not exist; create it"):
        worker.setup()


def test_heartbeat_makes_worker_and_pool_online_until_three_intervals_pass(
    store: SqlStore, project: Path
) -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    worker = Worker(store, WorkerOptions(pool="local", name="clocked", heartbeat_interval=10), now=lambda: t0)
    worker.setup()
    assert [(w.name, w.status) for w in store.list_workers("local", t0 + timedelta(seconds=29))] == [
        ("clocked", "ONLINE")
    ]
    assert store.work_pool_status("local", t0 + timedelta(seconds=29)) == "READY"
    assert store.list_workers("local", t0 + timedelta(seconds=31))[0].status == "OFFLINE"
    assert store.work_pool_status("local", t0 + timedelta(seconds=31)) == "NOT_READY"


def test_worker_ls_shows_online_workers(store: SqlStore, project: Path, tmp_path: Path) -> None:
    make_worker(store, project, name="lister")[0].setup()
    result = wp(tmp_path, "worker", "ls", "--pool", "local", "--json")
    assert result.returncode == 0, result.stderr
    rows = __import__("json").loads(result.stdout)
    assert [(r["name"], r["work_pool"], r["status"]) for r in rows] == [("lister", "local", "ONLINE")]


def test_a_prefetched_run_starts_at_its_expected_start(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "hello"), start_in=1.5)
    worker, _ = make_worker(store, project, run_once=True)
    worker.run()
    done = store.get_flow_run(run.id)
    assert done.state == "COMPLETED"
    assert done.start_time is not None and done.start_time >= run.expected_start_time


def test_job_variables_are_read_at_submission_and_run_variables_override(
    store: SqlStore, project: Path
) -> None:
    deployment = add_deployment(store, "show_env", job_variables={"env": {"GREETING": "old"}})
    run = add_run(store, deployment, job_variables={"env": {"EXTRA": "from-run"}})
    store.update_deployment("show_env", "d", job_variables={"env": {"GREETING": "edited"}})
    make_worker(store, project, run_once=True)[0].run()
    lines = logs(store, run.id)
    assert store.get_flow_run(run.id).state == "COMPLETED"
    assert "GREETING=edited" in lines and "EXTRA=from-run" in lines


def test_limit_caps_the_runs_claimed(store: SqlStore, project: Path) -> None:
    deployment = add_deployment(store, "hello")
    runs = [add_run(store, deployment) for _ in range(3)]
    make_worker(store, project, run_once=True, limit=1)[0].run()
    states = sorted(store.get_flow_run(r.id).state for r in runs)
    assert states == ["COMPLETED", "SCHEDULED", "SCHEDULED"]


def test_infrastructure_that_cannot_start_crashes_the_run(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "hello"), job_variables={"working_dir": "/no/such/dir"})
    make_worker(store, project, run_once=True)[0].run()
    done = store.get_flow_run(run.id)
    assert done.state == "CRASHED"
    assert "Failed to submit flow run to infrastructure" in (done.state_message or "")
    assert "/no/such/dir" in (done.state_message or "")


def test_a_custom_command_that_exits_zero_completes(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "hello"), job_variables={"command": "echo custom"})
    make_worker(store, project, run_once=True)[0].run()
    assert store.get_flow_run(run.id).state == "COMPLETED"
    assert "custom" in logs(store, run.id)


def test_pull_steps_clone_the_code_before_the_entrypoint_runs(store: SqlStore, tmp_path: Path) -> None:
    repo = tmp_path / "code-repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flows" / "demo.py").write_text(FLOWS)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "code"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    steps = (
        {"prefect.deployments.steps.git_clone": {"id": "clone", "repository": str(repo), "branch": "main"}},
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}},
    )
    run = add_run(store, add_deployment(store, "hello", pull_steps=steps))
    empty = tmp_path / "empty"
    empty.mkdir()
    make_worker(store, empty, run_once=True)[0].run()
    assert store.get_flow_run(run.id).state == "COMPLETED"
    assert "hello world" in logs(store, run.id)


def test_a_failing_pull_step_fails_the_run_with_its_output(store: SqlStore, project: Path) -> None:
    steps = ({"run_shell_script": {"script": "ls /no/such/path"}},)
    run = add_run(store, add_deployment(store, "hello", pull_steps=steps))
    make_worker(store, project, run_once=True)[0].run()
    done = store.get_flow_run(run.id)
    assert done.state == "FAILED"
    assert "run_shell_script" in (done.state_message or "") and "/no/such/path" in (done.state_message or "")
    assert any("/no/such/path" in line for line in logs(store, run.id))


def test_the_worker_logs_each_run_and_stores_its_infrastructure_id(store: SqlStore, project: Path) -> None:
    run = add_run(store, add_deployment(store, "hello"))
    worker, out = make_worker(store, project, run_once=True)
    worker.run()
    done = store.get_flow_run(run.id)
    assert done.state == "COMPLETED"
    assert done.infrastructure_id == str(infrastructure_pid(store, run.id))
    text = out.getvalue()
    assert f"claimed {run.name} ({run.id[:8]}) of {run.deployment}" in text
    assert f"started {run.name} as process {done.infrastructure_id}" in text
    assert f"{run.name} finished COMPLETED" in text
