"""examples/platform on Kubernetes, as a user runs it: `wp apply`, `wp deployment run`, a `wp worker start`
process with a KUBECONFIG, against the in-process API server of tests/k8s_fake (the image
`data-platform/flows:2026.11` is the example directory itself). And the rendered Job of every deployment of
every example kubernetes pool is accepted by the API server's validation as it is."""

from __future__ import annotations

import os
from pathlib import Path

from k8s_fake.cluster import FakeCluster
from k8s_fake.server import FakeApiServer
from k8s_fake.validation import check_job
from wp_cli import run_wp, run_wp_process

from reconciler.model import FlowRun
from reconciler.runtime.executors.base import Job
from reconciler.runtime.executors.kubernetes import KubernetesExecutor
from reconciler.runtime.executors.kubernetes_manifest import job_body
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.sql import SqlStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGE = "data-platform/flows:2026.11"


def test_the_platform_examples_kubernetes_deployment_runs_as_a_job(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"WP_HOME": str(tmp_path)}
    assert run_wp("apply", EXAMPLES / "platform", "--auto-approve", env=env).code == 0
    cluster = FakeCluster({IMAGE: EXAMPLES / "platform"})
    with FakeApiServer(cluster, namespaces=("flows-dev",)) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        started = run_wp("deployment", "run", "etl/k8s-smoke", "--json", env=env)
        assert started.code == 0, started.stderr
        run_id = started.json()["id"]
        worker = run_wp_process(
            "worker", "start", "--pool", "k8s-dev", "--type", "kubernetes", "--run-once",
            env={**env, "KUBECONFIG": str(kubeconfig), "PATH": os.environ["PATH"]},
            timeout=120,
        )  # fmt: skip
        assert worker.code == 0, worker.stdout + worker.stderr
        run = run_wp("flow-run", "inspect", run_id, "--json", env=env).json()
        assert run["state"] == "COMPLETED", run
        assert run["infrastructure_id"].startswith("flows-dev/")
        logs = [line["message"] for line in run_wp("flow-run", "logs", run_id, "--json", env=env).json()]
        assert "etl full_refresh=False window=2h" in logs
        body = cluster.created_jobs[0]
        container = body["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "LOG_LEVEL", "value": "debug"} in container["env"]
        assert container["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}
        assert server.rejected == []


def test_every_example_kubernetes_pool_renders_jobs_the_api_server_accepts(tmp_path: Path) -> None:
    from kubernetes import client

    env: dict[str, str | None] = {"WP_HOME": str(tmp_path)}
    checked = 0
    for project in sorted(p for p in EXAMPLES.iterdir() if (p / "wp.yaml").is_file()):
        home = tmp_path / project.name
        assert run_wp("apply", project, "--auto-approve", env={**env, "WP_HOME": str(home)}).code == 0
        store = SqlStore(f"sqlite:///{home / 'wp.db'}")
        cluster = FakeCluster({})
        try:
            pools = [p for p in store.list_work_pools() if p.type == "kubernetes"]
            with FakeApiServer(cluster, namespaces=("default", "flows-prod", "flows-dev")) as server:
                api = KubernetesExecutor(str(server.kubeconfig(tmp_path / "kubeconfig"))).api()
                for pool in pools:
                    worker = Worker(store, WorkerOptions(pool=pool.name, name="checker"))
                    deployments = [d for d in store.list_deployments() if d.work_pool == pool.name]
                    for deployment in deployments:
                        run = FlowRun(
                            id="0b7f3c1e-5d7a-4c9e-8f00-000000000001",
                            name="tidy-otter",
                            flow=deployment.flow,
                            deployment=f"{deployment.flow}/{deployment.name}",
                            work_pool=pool.name,
                            work_queue=deployment.work_queue or "default",
                            state="PENDING",
                            expected_start_time="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
                        )
                        configuration = worker._render(run, deployment, pool)
                        job = Job(run, deployment, configuration, {}, "checker")
                        body = job_body(job)
                        where = f"{project.name}: {deployment.flow}/{deployment.name} on {pool.name}"
                        assert check_job(body) == [], where
                        created = client.BatchV1Api(api).create_namespaced_job(
                            body["metadata"]["namespace"], body
                        )
                        assert created.metadata.name.startswith("tidy-otter-"), where
                        checked += 1
                assert server.rejected == []
        finally:
            store.close()
    assert checked >= 4  # examples/platform: nightly, hourly, billing-close on k8s-prod; k8s-smoke on k8s-dev
