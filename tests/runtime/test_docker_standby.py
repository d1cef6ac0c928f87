"""Standby containers for Prefect flows under the docker worker, against a real Docker Engine and the Prefect image of
tests/docker_images.py --prefect: after a Prefect flow's run, the next run of the same configuration is served by a
container that imported Prefect while it waited; it completes with its logs and task runs, carries the run's name,
gets no credentials, is cancelled by stopping it, is found again by a restarted worker, and standbys go away when
the worker stops, end when idle, and are not made with WP_PREFECT_WARM=0. Skips without an engine or the Prefect
venv; fails under CI=true."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import docker
import pytest
from wp_cli import run_wp

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests import polling
from tests.docker_images import mounted_project, prefect_image
from tests.runtime.prefect_venv import prefect_python

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

FLOW = textwrap.dedent(
    """
    import os, time
    from prefect import flow, task, get_run_logger

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(name="standby-flow", log_prints=True)
    def work(n: int = 3, seconds: float = 0) -> int:
        result = double(n)
        get_run_logger().info("doubled %s", result)
        print("WP_KEYS=" + ",".join(sorted(k for k in os.environ if k.startswith("WP_"))))
        if seconds:
            print("sleeping", flush=True)
            time.sleep(seconds)
            print("woke", flush=True)
        return result
    """
)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
CREDENTIALS = {"WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL"}


@dataclass
class Setup:
    store: SqlStore
    home: Path
    pool: str
    deployment: Deployment
    client: Any

    def run(self, **parameters: Any) -> FlowRun:
        run_id = str(uuid.uuid4())
        return self.store.create_flow_run(
            FlowRun(
                id=run_id,
                name=f"standby-run-{run_id[:6]}",
                flow=self.deployment.flow,
                deployment=f"{self.deployment.flow}/{self.deployment.name}",
                work_pool=self.pool,
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=datetime.now(UTC),
                parameters=parameters,
            )
        )

    def final(self, run: FlowRun, timeout: float = 120) -> FlowRun:
        wait_for(lambda: self.store.get_flow_run(run.id).state in FINAL, timeout=timeout)
        return self.store.get_flow_run(run.id)

    def logs(self, run: FlowRun) -> list[str]:
        return [line.message for line in self.store.read_logs(run.id)]

    def standbys(self, running_only: bool = True) -> list[Any]:
        # listed without inspecting (docker-py's list inspects each one, and the worker removes standbys
        # meanwhile: a 404), then each one still there inspected
        listed = self.client.api.containers(
            all=True, filters={"label": ["io.wp.standby", f"io.wp.work-pool={self.pool}"]}
        )
        found = []
        for entry in listed:
            with contextlib.suppress(docker.errors.NotFound):
                found.append(self.client.containers.get(entry["Id"]))
        return [
            c
            for c in found
            if c.name.startswith("wp-standby-") and (c.status == "running" or not running_only)
        ]


def said(lines: list[str], text: str) -> int:
    """How many of the run's log lines are the flow's print of `text` (log_prints: a logger line ending in it)."""
    return sum(line.endswith(f" - {text}") for line in lines)


wait_for = partial(polling.wait_for, timeout=120.0, interval=0.1)


@pytest.fixture
def setup(docker_client: Any, tmp_path: Path) -> Iterator[Setup]:
    image, _ = prefect_image(docker_client, str(prefect_python()))
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "work.py").write_text(FLOW)
    for path in (tmp_path, project, project / "flows"):
        path.chmod(0o755)
    pool = f"wp-test-standby-{uuid.uuid4().hex[:8]}"
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    store.create_work_pool(
        WorkPool(name=pool, type="docker", base_job_template=default_base_job_template("docker"))
    )
    deployment = Deployment(
        flow="work",
        name="d",
        entrypoint="flows/work.py:work",
        work_pool=pool,
        job_variables={
            **mounted_project(image, project),
            # a template asking for the worker's key: no container gets it, standby or not
            "env": {"WP_API_KEY": "{{ $WP_API_KEY }}"},
        },
    )
    store.apply(
        Plan(project="t", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)),
        ApplyRecord(project="t", actor="tester", summary={"add": 1, "change": 0, "destroy": 0}),
    )
    try:
        yield Setup(store, tmp_path, pool, deployment, docker_client)
    finally:
        store.close()
        for container in docker_client.containers.list(
            all=True, sparse=True, filters={"label": f"io.wp.work-pool={pool}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):  # a standby that ended itself meanwhile
                container.remove(force=True)


class Serving:
    """A worker serving on a thread; its own environment holds credentials."""

    def __init__(self, setup: Setup, **env: str) -> None:
        worker_env = {**os.environ, "WP_API_KEY": "worker-secret", "WP_API_URL": "http://127.0.0.1:9", **env}
        options = WorkerOptions(
            pool=setup.pool,
            name="w-standby",
            poll_interval=0.1,
            cancel_check_interval=0.2,
            stop_grace_seconds=2,
        )
        self.out = io.StringIO()
        self.worker = Worker(setup.store, options, env=worker_env, out=self.out)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)

    def __enter__(self) -> Worker:
        self.worker.setup()
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        print(self.out.getvalue())  # shown when the test fails
        self.worker.request_stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def test_a_standby_serves_the_next_run_is_cancellable_and_goes_when_the_worker_stops(setup: Setup) -> None:
    with Serving(setup):
        first = setup.final(setup.run(n=1))
        assert first.state == "COMPLETED", (first.state_message, setup.logs(first))
        wait_for(lambda: len(setup.standbys()) == 1)
        standby = setup.standbys()[0]
        assert not CREDENTIALS & {e.split("=", 1)[0] for e in standby.attrs["Config"]["Env"]}

        served = setup.final(setup.run(n=4))
        lines = setup.logs(served)
        text = "\n".join(lines)
        assert served.state == "COMPLETED", (served.state_message, text)
        assert served.infrastructure_id == standby.id  # the standby ran it
        container = setup.client.containers.get(standby.id)
        assert container.name == served.name  # renamed to the run's container name
        env = {e.split("=", 1)[0] for e in container.attrs["Config"]["Env"]}
        assert not CREDENTIALS & env
        assert any(line.endswith("doubled 8") for line in lines), text  # the run's parameters, its logger
        seen = next(line for line in lines if "WP_KEYS=" in line).split("WP_KEYS=", 1)[1].split(",")
        assert "WP_FLOW_RUN_ID" in seen and "WP_STANDBY" not in seen and not CREDENTIALS & set(seen)
        assert [line for line in lines if line.startswith("wp: task run 'double-")] != []
        assert "temporary server" not in text and "standby container:" not in text
        inspected = run_wp(
            "flow-run", "inspect", served.id, "--json", env={"WP_HOME": str(setup.home), "COLUMNS": "200"}
        ).json()
        assert [t["state"] for t in inspected["task_runs"]] == ["Completed"]

        # the run's end made the next standby; cancelling the run it serves stops that container
        wait_for(lambda: len(setup.standbys()) == 1 and setup.standbys()[0].id != standby.id)
        second = setup.standbys()[0]
        sleepy = setup.run(n=2, seconds=60)
        wait_for(lambda: said(setup.logs(sleepy), "sleeping"))
        assert setup.store.get_flow_run(sleepy.id).infrastructure_id == second.id
        started = time.monotonic()
        setup.store.set_run_state(sleepy.id, "CANCELLING", now=datetime.now(UTC))
        cancelled = setup.final(sleepy, timeout=30)
        assert cancelled.state == "CANCELLED" and time.monotonic() - started < 15
        assert setup.client.containers.get(second.id).status == "exited"
        assert not said(setup.logs(sleepy), "woke")

        again = setup.final(setup.run(n=1))  # cold (a cancelled run reported no end), and it makes a standby
        assert again.state == "COMPLETED"
        wait_for(lambda: len(setup.standbys()) == 1)
        waiting = setup.standbys()[0].id
    assert setup.standbys(running_only=False) == []  # removed when the worker stopped
    assert waiting not in {c["Id"] for c in setup.client.api.containers(all=True)}


def test_idle_standbys_end_and_warm_off_makes_none(setup: Setup) -> None:
    with Serving(setup, WP_PREFECT_WARM_IDLE="2"):
        first = setup.final(setup.run(n=1))
        assert first.state == "COMPLETED"
        wait_for(lambda: len(setup.standbys(running_only=False)) == 1)
        standby = setup.standbys(running_only=False)[0]
        wait_for(lambda: setup.client.containers.get(standby.id).status == "exited", timeout=60)
        assert setup.client.containers.get(standby.id).attrs["State"]["ExitCode"] == 3
        assert b"no run came in 2 s" in setup.client.containers.get(standby.id).logs()
        later = setup.final(setup.run(n=1))  # an expired standby is not handed a run: a fresh container
        assert later.state == "COMPLETED" and later.infrastructure_id != standby.id
    assert setup.standbys(running_only=False) == []

    with Serving(setup, WP_PREFECT_WARM="0"):
        off = setup.final(setup.run(n=1))
        assert off.state == "COMPLETED"
        time.sleep(2)  # a standby would be created right after the run's end
        assert setup.standbys(running_only=False) == []

    # a --run-once worker: the standby its run's end starts is gone when the worker has returned
    once = setup.run(n=1)
    options = WorkerOptions(pool=setup.pool, name="w-once", poll_interval=0.1, run_once=True)
    Worker(setup.store, options, out=io.StringIO()).run()
    assert setup.store.get_flow_run(once.id).state == "COMPLETED"
    assert setup.standbys(running_only=False) == []


def test_a_worker_killed_after_the_handoff_finds_the_run_again(setup: Setup) -> None:
    env = {**os.environ, "WP_HOME": str(setup.home)}
    for key in ("WP_API_URL", "WP_DATABASE_URL", "WP_API_KEY"):
        env.pop(key, None)
    argv = ["wp", "worker", "start", "--pool", setup.pool, "--name", "w-standby-restart"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert setup.final(setup.run(n=1)).state == "COMPLETED"
        wait_for(lambda: len(setup.standbys()) == 1)
        standby = setup.standbys()[0]
        run = setup.run(n=5, seconds=4)
        wait_for(lambda: said(setup.logs(run), "sleeping"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert setup.store.get_flow_run(run.id).infrastructure_id == standby.id
    # a standby the killed life left waiting (made here as it would have: its labels, its name)
    orphan = setup.client.containers.run(
        standby.attrs["Config"]["Image"],
        ["python3", "-c", "import time; time.sleep(120)"],
        name=f"wp-standby-{uuid.uuid4().hex[:12]}",
        labels={
            "io.wp.standby": "k",
            "io.wp.standby-of": "an-earlier-life",
            "io.wp.worker": "w-standby-restart",
            "io.wp.work-pool": setup.pool,
        },
        network_mode="none",
        detach=True,
    )
    second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        done = setup.final(run)
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
    lines = setup.logs(run)
    assert done.state == "COMPLETED", (done.state_message, out)
    assert said(lines, "sleeping") == 1 and said(lines, "woke") == 1  # no line shipped twice
    assert any(line.endswith("doubled 10") for line in lines)
    assert any("re-attached to docker" in line for line in lines)
    assert orphan.id not in {
        c.id for c in setup.client.containers.list(all=True, sparse=True)
    }  # removed by the new life


def test_a_standby_recorded_on_a_run_but_never_handed_it_is_not_followed(setup: Setup) -> None:
    """A worker that died between recording the standby on the run and handing it over: the restarted worker must
    not follow a container that will never run it (the run is then ended, not left hanging for the idle time)."""
    from reconciler.runtime.executors.docker import DockerExecutor

    image = str(setup.deployment.job_variables["image"])
    waiting = setup.client.containers.run(
        image,
        ["python3", "-c", "import time; time.sleep(120)"],
        name=f"wp-standby-{uuid.uuid4().hex[:12]}",
        labels={"io.wp.standby": "k", "io.wp.worker": "w-gone", "io.wp.work-pool": setup.pool},
        network_mode="none",
        detach=True,
    )
    run = setup.run().model_copy(update={"worker": "w-gone", "infrastructure_id": waiting.id})
    assert DockerExecutor().reattach(run, waiting.id) is None
    # removed: by reattach, or by the orphan sweep it starts on a thread, whichever the engine served first
    wait_for(
        lambda: waiting.id not in {c.id for c in setup.client.containers.list(all=True, sparse=True)},
        timeout=30,
    )
