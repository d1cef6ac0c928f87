"""The docker executor against a real Docker Engine, with images built locally by tests/docker_images.py (no
registry): runs complete, fail, crash, run out of memory, are cancelled, survive a worker restart and leave
nothing behind when asked. Skips without an engine; fails under CI=true."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from wp_cli import WpResult, run_wp

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, WorkQueue, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests.polling import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

ROOT = Path(__file__).resolve().parents[2]
FLOWS = textwrap.dedent(
    """
    import os, sys, time

    def hello(name="world"):
        print("hello " + name + " from python " + ".".join(map(str, sys.version_info[:2])))
        print("GREETING=" + os.environ.get("GREETING", "-"))
        print("WP_KEYS=" + ",".join(sorted(k for k in os.environ if k.startswith("WP_"))))
        print("to stderr", file=sys.stderr)

    def boom():
        raise ValueError("the flow broke")

    def sleepy(seconds=30):
        print("before", flush=True)
        time.sleep(seconds)
        print("after", flush=True)

    def hog():
        print("allocating", flush=True)
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
    """
)


@pytest.fixture(scope="session")
def images(docker_client: Any) -> dict[str, str]:
    """Image reference -> Python version: the oldest and newest supported (built once, then cached)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "docker_images.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    built: dict[str, str] = json.loads(done.stdout)
    return built


@pytest.fixture
def image(images: dict[str, str]) -> str:
    return sorted(images, key=lambda ref: tuple(int(p) for p in images[ref].split(".")))[-1]


@pytest.fixture
def pool_name(docker_client: Any) -> Iterator[str]:
    name = f"wp-test-{uuid.uuid4().hex[:8]}"
    yield name
    for container in docker_client.containers.list(all=True, filters={"label": f"io.wp.work-pool={name}"}):
        container.remove(force=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "demo.py").write_text(FLOWS)
    root.chmod(0o755)
    return root


@pytest.fixture
def store(tmp_path: Path, pool_name: str) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    opened.create_work_pool(
        WorkPool(name=pool_name, type="docker", base_job_template=default_base_job_template("docker"))
    )
    yield opened
    opened.close()


def add_deployment(
    store: SqlStore, pool: str, project: Path, image: str, function: str, **variables: Any
) -> Deployment:
    job_variables = {
        "image": image,
        "network_mode": "none",
        "volumes": [f"{project}:/opt/project:ro"],
        "working_dir": "/opt/project",
        **variables,
    }
    deployment = Deployment(
        flow=function,
        name=uuid.uuid4().hex[:6],
        entrypoint=f"flows/demo.py:{function}",
        work_pool=pool,
        job_variables=job_variables,
    )
    plan = Plan(project="t", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),))
    store.apply(plan, ApplyRecord(project="t", actor="tester", summary={"add": 1, "change": 0, "destroy": 0}))
    return deployment


def add_run(store: SqlStore, deployment: Deployment, queue: str = "default", **fields: Any) -> FlowRun:
    run_id = str(uuid.uuid4())
    return store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"run-{run_id[:6]}",
            flow=deployment.flow,
            deployment=f"{deployment.flow}/{deployment.name}",
            work_pool=deployment.work_pool,
            work_queue=queue,
            state="SCHEDULED",
            expected_start_time=fields.pop("expected_start_time", datetime.now(UTC)),
            **fields,
        )
    )


def worker_for(store: SqlStore, pool: str, **options: Any) -> Worker:
    opts = {
        "pool": pool,
        "name": "w1",
        "poll_interval": 0.1,
        "cancel_check_interval": 0.2,
        "stop_grace_seconds": 1.0,
        **options,
    }
    # the worker's own environment holds credentials; the container must not get them
    env = {**os.environ, "WP_API_KEY": "worker-secret", "WP_API_URL": "http://127.0.0.1:9"}
    return Worker(store, WorkerOptions(**opts), env=env, out=io.StringIO())


class Running:
    """A worker serving on a thread until the test ends."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self) -> Worker:
        self.worker.setup()
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.worker.request_stop()
        self.worker.request_stop()
        self.thread.join(timeout=20)


def final(store: SqlStore, run_id: str, timeout: float = 30.0) -> FlowRun:
    wait_for(
        lambda: store.get_flow_run(run_id).state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"},
        timeout=timeout,
    )
    return store.get_flow_run(run_id)


def logs(store: SqlStore, run_id: str) -> list[str]:
    return [line.message for line in store.read_logs(run_id)]


def wp(tmp_path: Path, *args: str) -> WpResult:
    """The `wp` command as a user runs it, in this process (no interpreter start to wait for)."""
    return run_wp(*args, env={"WP_HOME": str(tmp_path), "COLUMNS": "200"})


# ---------------------------------------------------------------------------------------------- the tests


def test_runs_complete_on_the_oldest_and_newest_python_with_logs_and_job_variables(
    store: SqlStore, pool_name: str, project: Path, images: dict[str, str], docker_client: Any, tmp_path: Path
) -> None:
    runs = {}
    for ref, version in images.items():
        deployment = add_deployment(
            store,
            pool_name,
            project,
            ref,
            "hello",
            env={"GREETING": "hi", "WP_API_KEY": "{{ $WP_API_KEY }}"},
            labels={"team": "data"},
            mem_limit="64m",
        )
        runs[add_run(store, deployment, parameters={"name": "docker"}).id] = version
    with Running(worker_for(store, pool_name)):
        done = {run_id: final(store, run_id) for run_id in runs}
    first = next(iter(runs))
    shown = wp(tmp_path, "flow-run", "logs", first).stdout  # what a user sees, once
    assert "GREETING=hi" in shown and "to stderr" in shown
    inspected = json.loads(wp(tmp_path, "flow-run", "inspect", first, "--json").stdout)
    assert inspected["infrastructure_id"] == docker_client.containers.get(inspected["infrastructure_id"]).id
    for run_id, version in runs.items():
        run = done[run_id]
        assert run.state == "COMPLETED", (run.state_message, logs(store, run_id))
        major_minor = ".".join(version.split(".")[:2])
        lines = logs(store, run_id)
        assert f"hello docker from python {major_minor}" in lines
        assert "GREETING=hi" in lines and "to stderr" in lines
        keys = next(m for m in lines if m.startswith("WP_KEYS=")).split("=", 1)[1].split(",")
        assert "WP_FLOW_RUN_ID" in keys
        assert not {"WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL", "WP_RUNNER_CODE"} & set(keys)
        assert run.infrastructure_id is not None
        container = docker_client.containers.get(run.infrastructure_id)
        labels = container.labels
        assert labels["team"] == "data"
        assert labels["io.wp.flow-run-id"] == run_id and labels["io.wp.work-pool"] == pool_name
        assert labels["io.wp.worker"] == "w1" and labels["io.wp.flow-run-name"] == run.name
        assert container.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        assert env["GREETING"] == "hi" and "WP_API_KEY" not in env and "WP_API_URL" not in env


def test_failing_flow_fails_and_killed_container_crashes(
    store: SqlStore, pool_name: str, project: Path, image: str, docker_client: Any
) -> None:
    failing = add_run(store, add_deployment(store, pool_name, project, image, "boom"))
    sleeping = add_run(store, add_deployment(store, pool_name, project, image, "sleepy"))
    with Running(worker_for(store, pool_name)):
        wait_for(lambda: "before" in logs(store, sleeping.id))
        docker_client.containers.get(store.get_flow_run(sleeping.id).infrastructure_id).kill()
        failed, crashed = final(store, failing.id), final(store, sleeping.id)
    assert failed.state == "FAILED" and failed.state_message == "ValueError: the flow broke"
    assert any("Traceback" in m for m in logs(store, failing.id))
    assert crashed.state == "CRASHED"
    assert "exited with code 137" in (crashed.state_message or "")
    assert "killed by SIGKILL" in (crashed.state_message or "")


def test_out_of_memory_crashes_with_the_reason(
    store: SqlStore, pool_name: str, project: Path, image: str
) -> None:
    run = add_run(store, add_deployment(store, pool_name, project, image, "hog", mem_limit="48m"))
    with Running(worker_for(store, pool_name)):
        done = final(store, run.id)
    assert done.state == "CRASHED", done.state_message
    assert "OOMKilled" in (done.state_message or "")


def test_a_missing_image_fails_that_run_and_the_worker_keeps_serving(
    store: SqlStore, pool_name: str, project: Path, image: str
) -> None:
    never = add_run(
        store,
        add_deployment(store, pool_name, project, "wp-test-missing:1.0", "hello", image_pull_policy="Never"),
    )
    # a registry on a closed loopback port: the pull fails at once, and nothing leaves the machine
    if_not_present = add_run(
        store,
        add_deployment(
            store,
            pool_name,
            project,
            "127.0.0.1:9/wp-test-missing:1.0",
            "hello",
            image_pull_policy="IfNotPresent",
        ),
    )
    with Running(worker_for(store, pool_name, limit=1)):
        refused, unpulled = final(store, never.id), final(store, if_not_present.id)
        after = add_run(store, add_deployment(store, pool_name, project, image, "hello"))
        served = final(store, after.id)
    assert refused.state == "FAILED"
    assert "image_pull_policy is Never" in (refused.state_message or "")
    assert "wp-test-missing:1.0" in (refused.state_message or "")  # the engine's words name the image
    assert unpulled.state == "FAILED"
    assert "could not pull image '127.0.0.1:9/wp-test-missing:1.0'" in (unpulled.state_message or "")
    assert any("could not pull" in m for m in logs(store, if_not_present.id))
    assert served.state == "COMPLETED"


def test_cancel_stops_the_container_and_auto_remove_leaves_nothing(
    store: SqlStore, pool_name: str, project: Path, image: str, docker_client: Any
) -> None:
    run = add_run(store, add_deployment(store, pool_name, project, image, "sleepy"))
    removed = add_run(store, add_deployment(store, pool_name, project, image, "hello", auto_remove=True))
    # a long grace period: the stop must come from SIGTERM being honoured, not from the kill after it
    with Running(worker_for(store, pool_name, stop_grace_seconds=20.0)):
        wait_for(lambda: "before" in logs(store, run.id))
        container_id = store.get_flow_run(run.id).infrastructure_id
        started = time.monotonic()
        store.set_run_state(run.id, "CANCELLING", now=datetime.now(UTC))
        cancelled = final(store, run.id)
        elapsed = time.monotonic() - started
        gone = final(store, removed.id)
    assert cancelled.state == "CANCELLED" and elapsed < 10
    container = docker_client.containers.get(container_id)
    assert container.status == "exited"
    assert container.attrs["State"]["ExitCode"] == 143  # ended by SIGTERM
    assert gone.state == "COMPLETED"
    assert any(m.startswith("hello") for m in logs(store, removed.id))
    left = docker_client.containers.list(all=True, filters={"label": f"io.wp.flow-run-id={removed.id}"})
    assert left == []


def test_limits_and_the_waterfall_hold_with_docker_runs(
    store: SqlStore, pool_name: str, project: Path, image: str
) -> None:
    store.create_work_queue(WorkQueue(work_pool=pool_name, name="urgent", priority=1))
    deployment = add_deployment(store, pool_name, project, image, "hello")
    earlier = datetime.now(UTC) - timedelta(seconds=30)
    low = add_run(store, deployment, expected_start_time=earlier)  # due first, but on the lower queue
    high = add_run(store, deployment, queue="urgent")
    with Running(worker_for(store, pool_name, limit=1)):
        first, second = final(store, high.id), final(store, low.id)
    assert first.state == second.state == "COMPLETED"
    assert first.start_time is not None and first.end_time is not None and second.start_time is not None
    # the higher-priority queue's run went first, and the limit of 1 kept the two containers apart
    assert first.end_time <= second.start_time


def test_a_worker_killed_and_restarted_reattaches_without_repeating_logs(
    store: SqlStore, pool_name: str, project: Path, image: str, tmp_path: Path
) -> None:
    run = add_run(
        store, add_deployment(store, pool_name, project, image, "sleepy"), parameters={"seconds": 4}
    )
    env = {**os.environ, "WP_HOME": str(tmp_path)}
    env.pop("WP_API_URL", None)
    env.pop("WP_DATABASE_URL", None)
    argv = ["wp", "worker", "start", "--pool", pool_name, "--name", "w-restart", "--type", "docker"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "before" in logs(store, run.id))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert store.get_flow_run(run.id).state == "RUNNING"
    second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        done = final(store, run.id)
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=20)
    assert done.state == "COMPLETED", (done.state_message, out)
    lines = logs(store, run.id)
    assert lines.count("before") == 1 and lines.count("after") == 1
    assert any("re-attached to docker" in m for m in lines)
    assert "Re-attached to" in out


def test_worker_type_must_equal_the_pools(pool_name: str, store: SqlStore, tmp_path: Path) -> None:
    result = wp(tmp_path, "worker", "start", "--pool", pool_name, "--type", "process")
    assert result.code == 1
    assert f"work pool {pool_name!r} is of type 'docker', not 'process'" in " ".join(result.stderr.split())


def test_reattach_finds_the_container_by_its_run_label_and_refuses_another_runs(
    store: SqlStore, pool_name: str, project: Path, image: str, docker_client: Any
) -> None:
    from reconciler.runtime.executors.base import Output
    from reconciler.runtime.executors.docker import DockerExecutor

    run = add_run(store, add_deployment(store, pool_name, project, image, "hello"))
    other = add_run(store, add_deployment(store, pool_name, project, image, "hello"))
    container = docker_client.containers.run(
        image,
        ["python3", "-c", "print('from before the restart')"],
        labels={"io.wp.flow-run-id": run.id, "io.wp.work-pool": pool_name},
        network_mode="none",
        detach=True,
    )
    executor = DockerExecutor()
    assert executor.reattach(other, container.id) is None  # its id, but another run's container
    # the id stored was the name wanted before a taken name got a suffix: the label finds it
    infra = executor.reattach(run, f"wp-test-stale-{uuid.uuid4().hex[:6]}")
    assert infra is not None and infra.id == container.id
    events: list[Any] = []
    wait_for(lambda: bool(events.extend(infra.read_events())) or infra.exit_code() is not None)
    events.extend(infra.read_events())
    assert infra.exit_code() == 0
    assert Output("stdout", "from before the restart") in [
        Output(e.stream, e.text) for e in events if isinstance(e, Output)
    ]
    infra.close()


def test_a_claimed_run_whose_id_was_never_recorded_is_found_by_label_not_started_twice(
    store: SqlStore, pool_name: str, project: Path, image: str, docker_client: Any
) -> None:
    run = add_run(store, add_deployment(store, pool_name, project, image, "hello"))
    now = datetime.now(UTC)
    store.heartbeat_worker(pool_name, "w1", interval=30, now=now)
    [claimed] = store.claim_runs(pool_name, "w1", limit=1, scheduled_before=now, now=now)
    assert claimed.infrastructure_id is None  # the earlier life died between starting and recording it
    container = docker_client.containers.run(
        image,
        ["python3", "-c", "print('started by the earlier life')"],
        labels={"io.wp.flow-run-id": run.id, "io.wp.work-pool": pool_name},
        network_mode="none",
        detach=True,
    )
    with Running(worker_for(store, pool_name)):
        done = final(store, run.id)
    assert done.state == "COMPLETED" and done.infrastructure_id == container.id
    assert "started by the earlier life" in logs(store, run.id)
    ran = docker_client.containers.list(all=True, filters={"label": f"io.wp.flow-run-id={run.id}"})
    assert [c.id for c in ran] == [container.id]  # followed, never started a second time
