"""Real Prefect flows under wp's docker worker, in real containers on a real Docker Engine.

The image (`wp-test-prefect:<version>`, tests/docker_images.py --prefect) is made with no registry: the interpreter
of tests/prefect_env.sh's venv and that venv's site-packages, so the container's `python3` imports the same
Prefect 3.9.1 the process-worker tests use, and no wp. Every scenario runs in one worker pass (the runs side by
side) to keep the suite fast; each test then checks one run's state and logs as `wp` shows them. The worker holds
an API key; the containers must not, and the runs' states and logs still arrive (through the container's output,
which the worker follows). Skips without an engine or the Prefect venv; fails under CI=true.
"""

from __future__ import annotations

import io
import os
import re
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from wp_cli import run_wp

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests.docker_images import mounted_project, prefect_image
from tests.runtime.prefect_venv import prefect_python
from tests.runtime.test_prefect_flows import (
    ETL,
    assert_recovered_on_the_third_attempt,
    assert_the_issues_flow_completed,
)

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

FLOWS = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from prefect import flow, task, get_run_logger

    @task(retries=2, retry_delay_seconds=0)
    def flaky(counter: str) -> str:
        path = Path(counter)
        n = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(n))
        if n < 3:
            raise ConnectionError(f"attempt {n} lost the connection")
        return f"ok on attempt {n}"

    @flow(log_prints=True)
    def recovers(counter: str = "/tmp/flaky.count") -> str:
        result = flaky(counter)
        print(result)
        return result

    @flow
    def raises() -> None:
        get_run_logger().warning("about to raise")
        raise ValueError("the flow broke in a container")

    @flow(log_prints=True)
    def environment() -> None:
        get_run_logger().info("logger line from inside the container")
        print("WP_KEYS=" + ",".join(sorted(k for k in os.environ if k.startswith("WP_"))))
        print("PREFECT_API_URL=" + os.environ.get("PREFECT_API_URL", "-"))
    """
)

SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "etl": ("flows/etl.py:etl", {"n": 4}),
    "recovers": ("flows/more.py:recovers", {}),
    "raises": ("flows/more.py:raises", {}),
    "environment": ("flows/more.py:environment", {}),
}
PASS_TIMEOUT = 180.0  # seconds; the pass takes seconds on an idle machine


@dataclass(frozen=True)
class DockerPass:
    runs: dict[str, FlowRun]
    home: Path
    image: str
    container_env: dict[str, dict[str, str]]

    def logs(self, key: str) -> list[str]:
        """The run's logs as `wp flow-run logs` shows them."""
        shown = run_wp(
            "flow-run", "logs", self.runs[key].id, env={"WP_HOME": str(self.home), "COLUMNS": "300"}
        )
        assert shown.code == 0, shown.stderr
        return shown.stdout.splitlines()

    def stored_logs(self, key: str) -> list[str]:
        """The run's log lines from the store (a traceback in them would fail `run_wp`'s own check)."""
        store = SqlStore(f"sqlite:///{self.home / 'wp.db'}")
        try:
            return [line.message for line in store.read_logs(self.runs[key].id)]
        finally:
            store.close()


@pytest.fixture(scope="module")
def docker_pass(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerPass]:
    image, _ = prefect_image(
        docker_client, str(prefect_python())
    )  # built once, then kept while its inputs hold
    home = tmp_path_factory.mktemp("prefect-docker")
    project = home / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "etl.py").write_text(ETL)
    (project / "flows" / "more.py").write_text(FLOWS)
    for path in (home, project, project / "flows"):
        path.chmod(0o755)
    pool = f"wp-test-prefect-{uuid.uuid4().hex[:8]}"
    store = SqlStore(f"sqlite:///{home / 'wp.db'}")
    store.create_work_pool(
        WorkPool(name=pool, type="docker", base_job_template=default_base_job_template("docker"))
    )
    runs: dict[str, FlowRun] = {}
    for key, (entrypoint, parameters) in SCENARIOS.items():
        deployment = Deployment(
            flow=key,
            name="d",
            entrypoint=entrypoint,
            work_pool=pool,
            job_variables={
                **mounted_project(image, project),
                # a template asking for the worker's key: the container must still not get it
                "env": {"WP_API_KEY": "{{ $WP_API_KEY }}"},
            },
        )
        change = Change(deployment.key, Action.CREATE, None, attributes(deployment))
        store.apply(
            Plan(project="t", changes=(change,)),
            ApplyRecord(project="t", actor="tester", summary={"add": 1, "change": 0, "destroy": 0}),
        )
        run_id = str(uuid.uuid4())
        runs[key] = store.create_flow_run(
            FlowRun(
                id=run_id,
                name=f"run-{run_id[:6]}",
                flow=key,
                deployment=f"{key}/d",
                work_pool=pool,
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=datetime.now(UTC),
                parameters=parameters,
            )
        )
    # the worker's own environment holds credentials
    env = {**os.environ, "WP_API_KEY": "worker-secret", "WP_API_URL": "http://127.0.0.1:9"}
    options = WorkerOptions(pool=pool, name="w1", poll_interval=0.1, cancel_check_interval=0.2, limit=4)
    worker = Worker(store, options, env=env, out=io.StringIO())
    worker.setup()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + PASS_TIMEOUT
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        while time.monotonic() < deadline:
            if all(store.get_flow_run(run.id).state in final for run in runs.values()):
                break
            time.sleep(0.1)
    finally:
        worker.request_stop()
        worker.request_stop()
        thread.join(timeout=30)
    done = {key: store.get_flow_run(run.id) for key, run in runs.items()}
    container_env = {}
    for key, run in done.items():
        if run.infrastructure_id:
            container = docker_client.containers.get(run.infrastructure_id)
            container_env[key] = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    store.close()
    try:
        yield DockerPass(done, home, image, container_env)
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"io.wp.work-pool={pool}"}
        ):
            container.remove(force=True)


def test_the_issues_flow_completes_in_a_container_with_parameters_logger_and_prints(
    docker_pass: DockerPass,
) -> None:
    assert_the_issues_flow_completed(docker_pass.runs["etl"], docker_pass.logs("etl"))


def test_a_failing_task_is_retried_in_a_container(docker_pass: DockerPass) -> None:
    assert_recovered_on_the_third_attempt(docker_pass.runs["recovers"], docker_pass.logs("recovers"))


def test_a_flow_that_raises_in_a_container_fails_with_the_error(docker_pass: DockerPass) -> None:
    run = docker_pass.runs["raises"]
    text = "\n".join(lines := docker_pass.stored_logs("raises"))
    assert run.state == "FAILED"
    assert run.state_message == "ValueError: the flow broke in a container"
    assert any(line.endswith("about to raise") for line in lines)
    assert "Traceback (most recent call last):" in text


def test_the_container_gets_no_wp_credentials_and_its_logs_still_arrive(docker_pass: DockerPass) -> None:
    run = docker_pass.runs["environment"]
    text = "\n".join(lines := docker_pass.logs("environment"))
    assert run.state == "COMPLETED", (run.state_message, text)
    # what the flow saw, through its own print: the run's spec, no credential
    keys = next(line for line in lines if "WP_KEYS=" in line).split("WP_KEYS=", 1)[1].split(",")
    assert "WP_FLOW_RUN_ID" in keys
    assert not {"WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL"} & set(keys)
    # Prefect's engine talked to the run's own API on the container's loopback, not to wp or a Prefect server
    api = next(line for line in lines if "PREFECT_API_URL=" in line).split("PREFECT_API_URL=", 1)[1]
    assert api.startswith("http://127.0.0.1:") and api.endswith("/api")
    assert any(line.endswith("logger line from inside the container") for line in lines)
    # and what the engine gave every container
    for key, env in docker_pass.container_env.items():
        assert not {"WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL"} & set(env), key
        assert "worker-secret" not in env.values(), key
    assert set(docker_pass.container_env) == set(SCENARIOS)


def test_inspect_lists_the_task_runs_with_their_states_and_retries(docker_pass: DockerPass) -> None:
    env = {"WP_HOME": str(docker_pass.home), "COLUMNS": "200"}
    inspected = run_wp("flow-run", "inspect", docker_pass.runs["recovers"].id, "--json", env=env).json()
    assert [(t["state"], t["attempts"], t["retries"]) for t in inspected["task_runs"]] == [
        ("Completed", 3, 2)
    ]
    assert inspected["task_runs"][0]["name"].startswith("flaky-")
    etl = run_wp("flow-run", "inspect", docker_pass.runs["etl"].id, env=env)
    assert etl.code == 0
    section = etl.stdout.split("Task runs", 1)[1]
    cells = [re.split("[│┃]", line)[1:-1] for line in section.splitlines() if re.search("[│┃]", line)]
    rows = [[cell.strip() for cell in row] for row in cells]
    assert rows[0] == ["Task run", "State", "Attempts", "Retries"], etl.stdout
    assert [row[1:] for row in rows[1:]] == [["Completed", "1", "0"], ["Completed", "1", "0"]], etl.stdout
    assert rows[1][0].startswith("extract-") and rows[2][0].startswith("total-"), etl.stdout
    plain = run_wp("flow-run", "inspect", docker_pass.runs["raises"].id, "--json", env=env).json()
    assert plain["task_runs"] == []


def test_the_prefect_image_is_kept_while_its_inputs_are_the_same(
    docker_pass: DockerPass, docker_client: Any
) -> None:
    from tests.docker_images import INPUTS_LABEL

    before = docker_client.images.get(docker_pass.image)
    started = time.monotonic()
    again, version = prefect_image(docker_client, str(prefect_python()))
    elapsed = time.monotonic() - started
    after = docker_client.images.get(again)
    assert again == docker_pass.image and version in again
    assert after.id == before.id and after.labels[INPUTS_LABEL] == before.labels[INPUTS_LABEL]
    assert elapsed < 10, elapsed  # a digest of a few files, no tar, no import
