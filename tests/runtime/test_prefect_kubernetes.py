"""Real Prefect flows under wp's kubernetes worker: each run a batch/v1 Job, against the in-process API server of
tests/k8s_fake (the official client, a kubeconfig; the pods' commands run as local processes).

The "image" is a directory holding the flows; its `python3` is the Prefect venv's (tests/prefect_env.sh), put
first on the container's PATH as an image with Prefect installed would have it. Every scenario runs in one
worker pass (the runs side by side); each test then checks what a user sees: the run's state, `wp flow-run
logs`, `wp flow-run inspect --json`. The worker holds API credentials; the pods must not get them, and the runs'
states and logs still arrive (through the pod's log, which the worker follows).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from k8s_fake.harness import harness
from wp_cli import run_wp

from reconciler.model import FlowRun
from reconciler.store.sql import SqlStore
from tests.runtime.prefect_venv import prefect_python
from tests.runtime.test_prefect_flows import (
    ETL,
    assert_recovered_on_the_third_attempt,
    assert_the_issues_flow_completed,
)

pytestmark = pytest.mark.xdist_group("prefect-flows")

MORE = textwrap.dedent(
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
    def recovers(counter: str) -> str:
        result = flaky(counter)
        print(result)
        return result

    @flow
    def raises() -> None:
        get_run_logger().warning("about to raise")
        raise ValueError("the flow broke in a pod")

    @flow(log_prints=True)
    def environment() -> None:
        get_run_logger().info("logger line from inside the pod")
        print("WP_KEYS=" + ",".join(sorted(k for k in os.environ if k.startswith("WP_"))))
        print("PREFECT_API_URL=" + os.environ.get("PREFECT_API_URL", "-"))
    """
)
CREDENTIALS = {"WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL"}
PASS_TIMEOUT = 180.0  # seconds; the pass takes seconds on an idle machine


@dataclass(frozen=True)
class KubernetesPass:
    runs: dict[str, FlowRun]
    db_url: str
    pod_env: dict[str, dict[str, str]]  # the container env of each run's Job, as submitted

    def logs(self, key: str) -> list[str]:
        """The run's logs as `wp flow-run logs` shows them."""
        shown = run_wp(
            "flow-run", "logs", self.runs[key].id, env={"WP_DATABASE_URL": self.db_url, "COLUMNS": "300"}
        )
        assert shown.code == 0, shown.stderr
        return shown.stdout.splitlines()

    def stored_logs(self, key: str) -> list[str]:
        """The run's log lines from the store (a traceback in them would fail `run_wp`'s own check)."""
        store = SqlStore(self.db_url)
        try:
            return [line.message for line in store.read_logs(self.runs[key].id)]
        finally:
            store.close()


@pytest.fixture(scope="module")
def kubernetes_pass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesPass]:
    python = prefect_python()
    tmp = tmp_path_factory.mktemp("prefect-kubernetes")
    with harness(tmp) as h:
        flows = tmp / "image" / "flows"
        (flows / "etl.py").write_text(ETL)
        (flows / "more.py").write_text(MORE)
        env = {
            "PATH": f"{python.parent}:/usr/bin:/bin",  # the image's python3 has Prefect
            "PREFECT_HOME": str(tmp / "prefect-home"),
            # a template asking for the worker's credentials: the pod must still not get them
            "WP_API_KEY": "{{ $WP_API_KEY }}",
            "WP_API_URL": "{{ $WP_API_URL }}",
        }
        scenarios: dict[str, tuple[str, dict[str, Any]]] = {
            "etl": ("flows/etl.py:etl", {"n": 4}),
            "recovers": ("flows/more.py:recovers", {"counter": str(tmp / "flaky.count")}),
            "raises": ("flows/more.py:raises", {}),
            "environment": ("flows/more.py:environment", {}),
        }
        runs = {}
        for key, (entrypoint, parameters) in scenarios.items():
            deployment = h.deploy(key, entrypoint=entrypoint, job_variables={"env": env})
            runs[key] = h.run(deployment, parameters=parameters)
        db_url = f"sqlite:///{tmp / 'wp.db'}"
        worker_env = {
            "WP_API_KEY": "worker-secret",
            "WP_API_URL": "http://127.0.0.1:9",
            "WP_DATABASE_URL": db_url,
        }
        h.start_worker(env=worker_env, limit=4)
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        deadline = time.monotonic() + PASS_TIMEOUT
        while time.monotonic() < deadline:
            if all(h.state(run.id).state in final for run in runs.values()):
                break
            time.sleep(0.1)
        h.stop_workers()
        done = {key: h.state(run.id) for key, run in runs.items()}
        pod_env = {}
        for body in h.cluster.created_jobs:
            run_id = body["metadata"]["labels"]["wp.io/flow-run-id"]
            key = next(k for k, run in runs.items() if run.id == run_id)
            container = body["spec"]["template"]["spec"]["containers"][0]
            pod_env[key] = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        yield KubernetesPass(done, db_url, pod_env)


def test_the_issues_flow_completes_in_a_kubernetes_job(kubernetes_pass: KubernetesPass) -> None:
    assert_the_issues_flow_completed(kubernetes_pass.runs["etl"], kubernetes_pass.logs("etl"))


def test_a_failing_task_is_retried_in_a_pod(kubernetes_pass: KubernetesPass) -> None:
    assert_recovered_on_the_third_attempt(kubernetes_pass.runs["recovers"], kubernetes_pass.logs("recovers"))


def test_a_flow_that_raises_in_a_pod_fails_with_the_error(kubernetes_pass: KubernetesPass) -> None:
    run = kubernetes_pass.runs["raises"]
    text = "\n".join(kubernetes_pass.stored_logs("raises"))
    assert run.state == "FAILED", text
    assert run.state_message == "ValueError: the flow broke in a pod"
    assert "about to raise" in text
    assert "Traceback (most recent call last):" in text


def test_task_runs_are_in_inspect(kubernetes_pass: KubernetesPass) -> None:
    env = {"WP_DATABASE_URL": kubernetes_pass.db_url, "COLUMNS": "200"}
    etl = run_wp("flow-run", "inspect", kubernetes_pass.runs["etl"].id, "--json", env=env).json()
    tasks = [(t["name"].split("-")[0], t["state"], t["attempts"]) for t in etl["task_runs"]]
    assert tasks == [("extract", "Completed", 1), ("total", "Completed", 1)]
    recovers = run_wp("flow-run", "inspect", kubernetes_pass.runs["recovers"].id, "--json", env=env).json()
    assert [(t["state"], t["attempts"], t["retries"]) for t in recovers["task_runs"]] == [("Completed", 3, 2)]


def test_the_pod_gets_no_wp_credentials_and_its_states_and_logs_still_arrive(
    kubernetes_pass: KubernetesPass,
) -> None:
    run = kubernetes_pass.runs["environment"]
    text = "\n".join(lines := kubernetes_pass.logs("environment"))
    assert run.state == "COMPLETED", (run.state_message, text)
    # what the flow saw, through its own print: the run's spec, no credential
    keys = next(line for line in lines if "WP_KEYS=" in line).split("WP_KEYS=", 1)[1].split(",")
    assert "WP_FLOW_RUN_ID" in keys
    assert not CREDENTIALS & set(keys)
    # Prefect's engine talked to the run's own API on the pod's loopback, not to wp or a Prefect server
    api = next(line for line in lines if "PREFECT_API_URL=" in line).split("PREFECT_API_URL=", 1)[1]
    assert api.startswith("http://127.0.0.1:") and api.endswith("/api")
    assert any(line.endswith("logger line from inside the pod") for line in lines)
    # and what each Job's container was given
    assert set(kubernetes_pass.pod_env) == set(kubernetes_pass.runs)
    for key, env in kubernetes_pass.pod_env.items():
        assert not CREDENTIALS & set(env), key
        assert "worker-secret" not in env.values(), key
