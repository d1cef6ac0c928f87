"""The docker executor next to the process executor, in the same run, on the same store.

    python bench/executors.py [N_RUNS]       # runs per figure and executor (default 20)

Needs a Docker Engine and the test images (`python tests/docker_images.py`). Prints, asserting nothing, for a
real `wp worker start --limit 4` process per executor on an embedded SQLite store:
- dispatch latency p50/p99: expected start → infrastructure running (the container's State.StartedAt; for a
  process, the worker's "started" log line) and → the flow reported RUNNING (run.start_time);
- trivial runs completed per minute, all due at once;
- the worker's RSS (and the flow-run children's, for processes) with 4 runs in flight.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import procfs

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[1]
WP = str(Path(sys.executable).parent / "wp")
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
FLOWS = "import time\n\ndef trivial():\n    pass\n\ndef sleepy(seconds=5):\n    time.sleep(seconds)\n"
MB = 2**20


def newest_image() -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "docker_images.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    images: dict[str, str] = json.loads(done.stdout)
    return max(images, key=lambda ref: tuple(int(p) for p in images[ref].split(".")))


def setup(store: SqlStore, project: Path, image: str) -> None:
    variables: dict[str, dict[str, Any]] = {
        "process": {},
        "docker": {
            "image": image,
            "network_mode": "none",
            "volumes": [f"{project}:/opt/project:ro"],
            "working_dir": "/opt/project",
            "auto_remove": True,
        },
    }
    changes = []
    for kind in ("process", "docker"):
        store.create_work_pool(
            WorkPool(name=f"bench-{kind}", type=kind, base_job_template=default_base_job_template(kind))
        )
        for function in ("trivial", "sleepy"):
            deployment = Deployment(
                flow=function,
                name=kind,
                entrypoint=f"flows/demo.py:{function}",
                work_pool=f"bench-{kind}",
                job_variables=variables[kind],
            )
            changes.append(Change(deployment.key, Action.CREATE, None, attributes(deployment)))
    store.apply(
        Plan(project="bench", changes=tuple(changes)),
        ApplyRecord(project="bench", actor="bench", summary={"add": len(changes), "change": 0, "destroy": 0}),
    )


def add_runs(store: SqlStore, kind: str, function: str, starts: list[datetime]) -> list[str]:
    ids = []
    for start in starts:
        run_id = str(uuid.uuid4())
        store.create_flow_run(
            FlowRun(
                id=run_id,
                name=f"bench-{run_id[:8]}",
                flow=function,
                deployment=f"{function}/{kind}",
                work_pool=f"bench-{kind}",
                work_queue="default",
                state="SCHEDULED",
                expected_start_time=start,
            )
        )
        ids.append(run_id)
    return ids


def wait_until(predicate: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the runs did not finish in time")
        time.sleep(0.1)


def all_final(store: SqlStore, ids: list[str]) -> bool:
    return all(store.get_flow_run(i).state in FINAL for i in ids)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def infra_started(store: SqlStore, client: Any, kind: str, run: FlowRun) -> datetime | None:
    if kind == "process":
        line = next(
            (ln for ln in store.read_logs(run.id) if ln.stream == "wp" and " started " in ln.message), None
        )
        return line.timestamp.replace(tzinfo=UTC) if line else None
    return None  # containers are auto-removed: read while running (see `dispatch`)


def dispatch(store: SqlStore, client: Any, kind: str, n: int) -> tuple[list[float], list[float]]:
    """Runs due one every 2 s (one at a time: latency, not queueing), expected start → running."""
    first = datetime.now(UTC) + timedelta(seconds=3)
    ids = add_runs(store, kind, "trivial", [first + timedelta(seconds=2 * i) for i in range(n)])
    container_started: dict[str, datetime] = {}

    def watch() -> bool:
        if kind == "docker":
            for listed in client.api.containers(all=True, filters={"label": "io.wp.work-pool=bench-docker"}):
                run_id = listed["Labels"].get("io.wp.flow-run-id")
                if not run_id or run_id in container_started:
                    continue
                try:
                    started = client.api.inspect_container(listed["Id"])["State"].get("StartedAt", "")
                except docker.errors.NotFound:
                    continue  # already removed (auto_remove)
                if run_id and run_id not in container_started and not started.startswith("0001"):
                    stamp = started.rstrip("Z")
                    whole, _, frac = stamp.partition(".")
                    container_started[run_id] = datetime.fromisoformat(
                        whole + "." + (frac + "000000")[:6]
                    ).replace(tzinfo=UTC)
        return all_final(store, ids)

    wait_until(watch)
    to_infra, to_running = [], []
    for run_id in ids:
        run = store.get_flow_run(run_id)
        expected = run.expected_start_time.replace(tzinfo=UTC)
        started = (
            container_started.get(run_id) if kind == "docker" else infra_started(store, client, kind, run)
        )
        if started is not None:
            to_infra.append((started - expected).total_seconds())
        if run.start_time is not None:
            to_running.append((run.start_time.replace(tzinfo=UTC) - expected).total_seconds())
    return to_infra, to_running


def throughput(store: SqlStore, kind: str, n: int) -> float:
    ids = add_runs(store, kind, "trivial", [datetime.now(UTC)] * n)
    started = time.monotonic()
    wait_until(lambda: all_final(store, ids))
    return n / (time.monotonic() - started) * 60


def rss_in_flight(store: SqlStore, worker: subprocess.Popen[bytes], kind: str) -> tuple[float, float]:
    ids = add_runs(store, kind, "sleepy", [datetime.now(UTC)] * 4)
    wait_until(lambda: sum(store.get_flow_run(i).state == "RUNNING" for i in ids) == 4, timeout=120)
    worker_rss = procfs.rss(worker.pid) / MB
    children = sum(procfs.rss(c) for c in procfs.children(worker.pid)) / MB
    wait_until(lambda: all_final(store, ids))
    return worker_rss, children


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    client = docker.from_env()
    image = newest_image()
    with tempfile.TemporaryDirectory(prefix="wp-bench-executors-") as tmp:
        root = Path(tmp)
        project = root / "project"
        (project / "flows").mkdir(parents=True)
        (project / "flows" / "demo.py").write_text(FLOWS)
        project.chmod(0o755)
        store = SqlStore(f"sqlite:///{root / 'wp.db'}")
        setup(store, project, image)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_HOME": str(root)}
        print(f"image {image}, {n} runs per figure, load average {os.getloadavg()[0]:.1f}")
        print(
            f"{'executor':<9} {'to infra p50/p99 s':>20} {'to RUNNING p50/p99 s':>22} {'runs/min':>9} "
            f"{'worker MB':>10} {'children MB':>12}"
        )
        for kind in ("process", "docker"):
            worker = subprocess.Popen(
                [WP, "worker", "start", "--pool", f"bench-{kind}", "--limit", "4", "--name", f"bench-{kind}"],
                env=env,
                cwd=project,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                to_infra, to_running = dispatch(store, client, kind, n)
                per_minute = throughput(store, kind, n)
                worker_mb, children_mb = rss_in_flight(store, worker, kind)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
            infra = f"{percentile(to_infra, 0.5):.3f} / {percentile(to_infra, 0.99):.3f}" if to_infra else "-"
            running = f"{percentile(to_running, 0.5):.3f} / {percentile(to_running, 0.99):.3f}"
            print(
                f"{kind:<9} {infra:>20} {running:>22} {per_minute:>9.0f} {worker_mb:>10.0f} {children_mb:>12.0f}"
            )
        store.close()


if __name__ == "__main__":
    main()
