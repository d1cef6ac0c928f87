"""What a Kubernetes test needs around the fake cluster: an "image" (a directory holding the project's flows, as
a real image would), the fake API server and its kubeconfig, a real SQLite store with a kubernetes pool and
deployments, and a real worker running the Kubernetes executor in a thread."""

from __future__ import annotations

import io
import textwrap
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from k8s_fake.cluster import FakeCluster
from k8s_fake.server import FakeApiServer
from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.executors.kubernetes import KubernetesExecutor
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests import polling

IMAGE = "wp-test/flows:1"
POOL = "k8s"

FLOWS = textwrap.dedent(
    """
    import os, sys, time

    def hello(name="world"):
        print(f"hello {name}")
        print("GREETING=" + os.environ.get("GREETING", "-"))
        print("API_KEY=" + os.environ.get("WP_API_KEY", "-"))
        print("to stderr", file=sys.stderr)

    def boom():
        raise ValueError("the flow broke")

    def sleepy(seconds=30):
        print("sleeping", flush=True)
        time.sleep(seconds)
        print("woke up", flush=True)

    def counting(n=200, pause=0.002):
        for i in range(n):
            print(f"line {i:04d}", flush=True)
            time.sleep(pause)
    """
)


class Harness:
    def __init__(self, root: Path, cluster: FakeCluster, server: FakeApiServer, store: SqlStore) -> None:
        self.root = root
        self.cluster = cluster
        self.server = server
        self.store = store
        self.kubeconfig = server.kubeconfig(root / "kubeconfig")
        self.out = io.StringIO()
        self._threads: list[tuple[Worker, threading.Thread]] = []

    def executor(self, **options: Any) -> KubernetesExecutor:
        defaults: dict[str, Any] = {
            "hopeless_grace_seconds": 0.5,
            "watch_seconds": 2,
            "log_end_grace_seconds": 5,
        }
        return KubernetesExecutor(str(self.kubeconfig), **{**defaults, **options})

    def deploy(self, function: str, **fields: Any) -> Deployment:
        deployment = Deployment(
            flow=function.replace("_", "-"),
            name="d",
            work_pool=POOL,
            **{"entrypoint": f"flows/demo.py:{function}", **fields},
        )
        plan = Plan(
            project="test", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)
        )
        self.store.apply(
            plan, ApplyRecord(project="test", actor="tester", summary={"add": 1, "change": 0, "destroy": 0})
        )
        return deployment

    def run(self, deployment: Deployment, **fields: Any) -> FlowRun:
        run_id = str(uuid.uuid4())
        run = FlowRun(
            id=run_id,
            name=f"brave-{run_id[:6]}",
            flow=deployment.flow,
            deployment=f"{deployment.flow}/{deployment.name}",
            work_pool=POOL,
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC) - timedelta(seconds=1),
            parameters=fields.pop("parameters", deployment.parameters),
            **fields,
        )
        return self.store.create_flow_run(run)

    def start_worker(self, name: str = "kw1", **options: Any) -> Worker:
        executor = options.pop("executor", None) or self.executor()
        env = {"WP_API_KEY": "s3cret", **options.pop("env", {})}
        opts = {"pool": POOL, "name": name, "poll_interval": 0.1, "cancel_check_interval": 0.2, **options}
        worker = Worker(self.store, WorkerOptions(**opts), executor=executor, out=self.out, env=env)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self._threads.append((worker, thread))
        return worker

    def stop_workers(self) -> None:
        for worker, _ in self._threads:
            worker.request_stop()
            worker.request_stop()
        for _, thread in self._threads:
            thread.join(15)
        self._threads.clear()

    def state(self, run_id: str) -> FlowRun:
        return self.store.get_flow_run(run_id)

    def wait_final(self, run_id: str, timeout: float = 20.0) -> FlowRun:
        return wait_for(lambda: _final(self.state(run_id)), timeout=timeout)

    def logs(self, run_id: str) -> list[str]:
        return [line.message for line in self.store.read_logs(run_id)]

    def job_of(self, run_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for job in self.cluster.jobs.values():
                if job["metadata"]["labels"].get("wp.io/flow-run-id") == run_id:
                    return job
            return None

        return self.cluster.wait_for(find)


def _final(run: FlowRun) -> FlowRun | None:
    return run if run.state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None


wait_for = partial(polling.wait_for, timeout=20.0)


def kubernetes_pool(template: dict[str, Any] | None = None) -> WorkPool:
    base = default_base_job_template("kubernetes")
    if template is None:
        variables = base.variables
        variables["properties"]["image"]["default"] = IMAGE
        template = {"job_configuration": base.job_configuration, "variables": variables}
    return WorkPool(name=POOL, type="kubernetes", base_job_template=template)


def _warm_up(h: Harness) -> None:
    """The client builds its request and response validators on first use (seconds per API); pay that once
    per test process, not inside the first scenario's timing."""
    from kubernetes import client

    api = h.executor().api()
    client.CoreV1Api(api).list_namespaced_pod("default", _preload_content=False)
    client.BatchV1Api(api).list_namespaced_job("default", _preload_content=False)
    with h.cluster.cond:
        h.cluster.requests.clear()  # tests count the executor's requests only


@contextmanager
def harness(
    tmp_path: Path, pool: WorkPool | None = None, namespaces: tuple[str, ...] = ("default",)
) -> Iterator[Harness]:
    image = tmp_path / "image"
    (image / "flows").mkdir(parents=True)
    (image / "flows" / "demo.py").write_text(FLOWS)
    cluster = FakeCluster({IMAGE: image})
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    store.create_work_pool(pool or kubernetes_pool())
    with FakeApiServer(cluster, namespaces) as server:
        h = Harness(tmp_path, cluster, server, store)
        _warm_up(h)
        try:
            yield h
        finally:
            h.stop_workers()
            store.close()
