"""The runtime as a user meets it: a real `wp server start` on 127.0.0.1, real `wp worker start` processes
talking to it over HTTP, real flow-run processes, SQLite and PostgreSQL behind the server.

What is already proven one level down is not repeated here: the claim's rules on every store
(tests/store/test_runs.py), a killed flow process CRASHED and cancellation (tests/runtime/test_worker.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from wp_cli import run_wp

from reconciler.api import create_app
from reconciler.model import FlowRun, WorkPool, WorkQueue
from reconciler.runtime.scheduler import Scheduler
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore
from tests.wp_server import free_port

KEY = "scenario-key"
REPO = Path(__file__).resolve().parents[2]
WP = str(Path(sys.executable).parent / "wp")
SLOT_STATES = ["PENDING", "RUNNING", "CANCELLING"]
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}

FLOWS = textwrap.dedent(
    """
    import time

    def work(seconds=0.0, tag=""):
        print(f"working {tag}", flush=True)
        time.sleep(seconds)
        print(f"done {tag}", flush=True)

    def chatty(lines=12, every=0.25):
        for i in range(lines):
            print(f"line {i}", flush=True)
            time.sleep(every)
    """
)

PROJECT = """
project: scenarios
work_pools:
  - name: p
    type: process
    concurrency_limit: 5
    queues:
      - {name: critical, priority: 1, concurrency_limit: 1}
      - {name: high, priority: 5, concurrency_limit: 3}
      - {name: low, priority: 10}
deployments:
  - {name: critical, entrypoint: flows/work.py:work, work_pool: {name: p, work_queue_name: critical}}
  - {name: high, entrypoint: flows/work.py:work, work_pool: {name: p, work_queue_name: high}}
  - {name: low, entrypoint: flows/work.py:work, work_pool: {name: p, work_queue_name: low}}
  - {name: talk, entrypoint: flows/work.py:chatty, work_pool: {name: p}}
"""


# ---------------------------------------------------------------------------------------------- harness


def clean_env(**extra: str) -> dict[str, str]:
    """The outside environment without wp's variables; the working tree's code comes first on the path, so
    the child processes run the code under test even if the editable install points elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | {"PYTHONPATH": path} | extra


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Runtime:
    """A wp server and its workers as child processes, in one project directory."""

    root: Path
    store_env: dict[str, str]  # WP_HOME or WP_DATABASE_URL of the server
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[str] | None = None
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        return {"WP_API_URL": self.url, "WP_API_KEY": KEY}

    def api(self) -> HttpStore:
        return HttpStore(self.url, api_key=KEY)

    def start_server(self) -> None:
        log = (self.root / "server.log").open("a")
        self.server = subprocess.Popen(
            [WP, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=clean_env(WP_API_KEY=KEY, **self.store_env),
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = self.server

        def healthy() -> bool:
            assert server.poll() is None, f"wp server exited {server.returncode}: {self.server_log()}"
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        # seconds on a quiet machine; a cold start under heavy load took over 30 s (its banner not yet printed)
        wait_for(healthy, "the wp server to answer /health", timeout=90)

    def stop_server(self) -> int:
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        return self.server.wait(timeout=30)

    def server_log(self) -> str:
        return (self.root / "server.log").read_text()

    def start_worker(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        argv = [WP, "worker", "start", "--pool", "p", "--name", name, "--poll-interval", "0.1", *args]
        worker = subprocess.Popen(
            argv,
            env=clean_env(**(env if env is not None else self.client_env())),
            cwd=self.root,
            stdout=(self.root / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.workers.append(worker)
        return worker

    def worker_log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def close(self) -> None:
        for proc in [*self.workers, self.server]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "work.py").write_text(FLOWS)
    (root / "wp.yaml").write_text(PROJECT)
    return root


def apply_project(rt: Runtime) -> None:
    result = run_wp("apply", rt.root, "--auto-approve", env=dict(rt.client_env()))
    assert result.code == 0, result.stderr


def new_run(
    store: HttpStore | SqlStore, deployment: str, queue: str, at: datetime | None = None, **params: object
) -> FlowRun:
    run_id = str(uuid.uuid4())
    flow = deployment.partition("/")[0]
    run = FlowRun(
        id=run_id,
        name=f"{params.get('tag') or flow}-{run_id[:4]}",
        flow=flow,
        deployment=deployment,
        work_pool="p",
        work_queue=queue,
        state="SCHEDULED",
        expected_start_time=at or datetime.now(UTC),
        parameters=params,
    )
    return store.create_flow_run(run)


def finished(store: HttpStore | SqlStore, runs: list[FlowRun]) -> bool:
    return all(store.get_flow_run(r.id).state in FINAL for r in runs)


def assert_completed_with_logs(store: HttpStore | SqlStore, runs: list[FlowRun]) -> None:
    for run in runs:
        final = store.get_flow_run(run.id)
        assert final.state == "COMPLETED", (final.name, final.state, final.state_message)
        messages = [line.message for line in store.read_logs(run.id)]
        tag = run.parameters["tag"]
        assert f"working {tag}" in messages and f"done {tag}" in messages, messages


def stop_worker(worker: subprocess.Popen[str]) -> None:
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0


# ---------------------------------------------------------------------------------------------- (a) delivery


def _waterfall_with_one_slot(rt: Runtime, api: HttpStore) -> None:
    """One worker with one slot: the order runs start in is the order the pool delivers them."""
    api.update_work_queue("p", "low", paused=True)
    t = datetime.now(UTC) - timedelta(seconds=5)

    def make(queue: str, i: int, seconds: float = 0.0, at: datetime | None = None) -> FlowRun:
        when = at or t + timedelta(milliseconds=i)
        return new_run(api, f"work/{queue}", queue, at=when, seconds=seconds, tag=f"{queue}{i}")

    # created lowest priority first: delivery must follow priority, not creation order
    lows = [make("low", i, seconds=0.6) for i in range(3)]
    highs = [make("high", i) for i in range(2)]
    criticals = [make("critical", i) for i in range(2)]
    worker = rt.start_worker("one-slot", "--limit", "1")
    wait_for(lambda: finished(api, criticals + highs), "the critical and high runs to finish")
    # the paused queue was skipped all along although its runs were due first (on a slow machine the
    # scheduler may have marked them LATE meanwhile: still not delivered)
    assert {api.get_flow_run(r.id).state for r in lows} <= {"SCHEDULED", "LATE"}

    api.update_work_queue("p", "low", paused=False)
    # RUNNING, or already done: a poll of the test may fall after the 0.6 s run on a loaded machine
    started_states = {"RUNNING", *FINAL}
    wait_for(lambda: api.get_flow_run(lows[0].id).state in started_states, "the first low run to start")
    arriving = make("critical", 9, at=datetime.now(UTC))  # arrives while low runs are being worked off
    everything = [*criticals, *highs, lows[0], arriving, *lows[1:]]
    wait_for(lambda: finished(api, everything), "every run to finish")
    started = sorted(everything, key=lambda r: api.get_flow_run(r.id).start_time or datetime.max)
    assert [r.parameters["tag"] for r in started] == [r.parameters["tag"] for r in everything]
    assert_completed_with_logs(api, everything)
    stop_worker(worker)


def _most_at_once(runs: list[FlowRun]) -> int:
    """The most of `runs` running at one moment, from their start and end times."""
    edges = sorted(
        [(r.start_time, 1) for r in runs if r.start_time and r.end_time]
        + [(r.end_time, -1) for r in runs if r.start_time and r.end_time]
    )
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant: a freed slot, then a new run
        now += step
        most = max(most, now)
    return most


def _limits_with_two_workers(rt: Runtime, api: HttpStore) -> None:
    """Two workers with 4 slots each on a pool limited to 5: the limits, not the workers, bound the work."""
    counts = (("critical", 3), ("high", 5), ("low", 4))
    runs = [
        new_run(api, f"work/{queue}", queue, seconds=0.6, tag=f"{queue}-wide{i}")
        for queue, n in counts
        for i in range(n)
    ]
    workers = [rt.start_worker(name, "--limit", "4") for name in ("wide-a", "wide-b")]
    peaks = {"critical": 0, "high": 0, "low": 0, "pool": 0}
    deadline = time.monotonic() + 60
    while not finished(api, runs):
        assert time.monotonic() < deadline, "the runs did not finish in 60 s"
        holders = api.list_flow_runs(states=SLOT_STATES, work_pool="p")
        for queue in ("critical", "high", "low"):
            peaks[queue] = max(peaks[queue], sum(r.work_queue == queue for r in holders))
        peaks["pool"] = max(peaks["pool"], len(holders))
        time.sleep(0.03)
    # none was ever exceeded (sampled live), and every limit was reached: the samples may miss a moment on a
    # loaded machine, so the runs' own start and end times count too
    final = [api.get_flow_run(r.id) for r in runs]
    for queue in ("critical", "high", "low"):
        peaks[queue] = max(peaks[queue], _most_at_once([r for r in final if r.work_queue == queue]))
    peaks["pool"] = max(peaks["pool"], _most_at_once(final))
    assert peaks["critical"] == 1 and peaks["high"] == 3 and peaks["pool"] == 5, peaks
    assert_completed_with_logs(api, runs)
    assert {api.get_flow_run(r.id).worker for r in runs} == {"wide-a", "wide-b"}
    for worker in workers:
        stop_worker(worker)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_three_queues_deliver_in_waterfall_order_within_their_limits(
    backend: str, request: pytest.FixtureRequest, project: Path, tmp_path: Path
) -> None:
    store_env = {"WP_HOME": str(tmp_path / "home")}
    if backend == "postgres":
        store_env["WP_DATABASE_URL"] = str(request.getfixturevalue("postgres_url"))
    rt = Runtime(project, store_env)
    try:
        rt.start_server()
        apply_project(rt)
        with rt.api() as api:
            _waterfall_with_one_slot(rt, api)
            _limits_with_two_workers(rt, api)
        assert rt.stop_server() == 0, rt.server_log()
        assert "Traceback" not in rt.server_log()
    finally:
        rt.close()


# ---------------------------------------------------------------------------------------------- (b) dead worker


def _pid_of(store: SqlStore, run: FlowRun) -> int:
    started = next(line.message for line in store.read_logs(run.id) if " as process " in line.message)
    return int(started.rsplit(" ", 1)[1])


@pytest.mark.slow
def test_a_killed_workers_runs_are_recovered_and_a_new_worker_picks_them_up(
    project: Path, tmp_path: Path
) -> None:
    env = {"WP_HOME": str(tmp_path / "home")}
    assert run_wp("apply", project, "--auto-approve", env=dict(env)).code == 0
    store = SqlStore(f"sqlite:///{tmp_path / 'home' / 'wp.db'}")
    rt = Runtime(project, env)
    orphan: int | None = None
    try:
        args = ("--limit", "2", "--heartbeat-interval", "1", "--prefetch-seconds", "60")
        victim = rt.start_worker("victim", *args, env=env)
        wait_for(lambda: bool(store.list_workers("p", datetime.now(UTC))), "the worker's first heartbeat")
        running = new_run(store, "work/high", "high", seconds=30, tag="long")
        waiting = new_run(store, "work/low", "low", at=datetime.now(UTC) + timedelta(seconds=4), tag="later")
        wait_for(
            lambda: (
                (store.get_flow_run(running.id).state, store.get_flow_run(waiting.id).state)
                == ("RUNNING", "PENDING")
            ),
            "one run RUNNING and one claimed (PENDING) by the worker",
        )
        orphan = _pid_of(store, running)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        [dead] = store.list_workers("p", datetime.now(UTC))
        last = dead.last_heartbeat
        scheduler = Scheduler(store)
        early = scheduler.tick(last + timedelta(seconds=2.9))  # 2 intervals missed: not dead yet
        assert (early.requeued, early.crashed) == (0, 0)
        assert store.get_flow_run(waiting.id).worker == "victim"
        recovered = scheduler.tick(last + timedelta(seconds=3.1))  # the third interval missed
        assert (recovered.requeued, recovered.crashed) == (1, 1)
        crashed = store.get_flow_run(running.id)
        assert crashed.state == "CRASHED" and "heartbeats" in (crashed.state_message or "")
        handed_back = store.get_flow_run(waiting.id)
        assert (handed_back.state, handed_back.worker) == ("SCHEDULED", None)
        assert not {"PENDING", "RUNNING"} & set(store.count_runs_by_state("p"))  # slots freed

        rt.start_worker("rescuer", "--heartbeat-interval", "1", env=env)
        wait_for(lambda: finished(store, [waiting]), "the handed-back run to finish on the new worker")
        assert_completed_with_logs(store, [waiting])
        assert store.get_flow_run(waiting.id).worker == "rescuer"
    finally:
        if orphan is not None:  # the killed worker's flow process lives on in its own session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(orphan, signal.SIGKILL)
        rt.close()
        store.close()


# ---------------------------------------------------------------------------------------------- (c) restart


@pytest.mark.slow
def test_a_server_restarted_mid_run_loses_nothing(project: Path, tmp_path: Path) -> None:
    rt = Runtime(project, {"WP_HOME": str(tmp_path / "home")})
    lines = 20
    try:
        rt.start_server()
        apply_project(rt)
        rt.start_worker("steady", "--heartbeat-interval", "5")
        with rt.api() as api:
            run = new_run(api, "chatty/talk", "default", lines=lines, every=0.25)
            wait_for(lambda: api.get_flow_run(run.id).state == "RUNNING", "the run to start")
        # a SIGTERM is a clean stop (exit 0), also with a worker mid-run
        assert rt.stop_server() == 0, rt.server_log()
        time.sleep(1.0)  # the outage: the flow keeps printing, the worker keeps what it cannot ship
        rt.start_server()
        with rt.api() as api:
            wait_for(lambda: finished(api, [run]), "the run to finish after the restart", timeout=60)
            final = api.get_flow_run(run.id)
            assert final.state == "COMPLETED", final.state_message
            printed = [line.message for line in api.read_logs(run.id) if line.stream == "stdout"]
        assert printed == [f"line {i}" for i in range(lines)]
        assert "server unreachable, retrying" in rt.worker_log("steady")
        assert "Traceback" not in rt.worker_log("steady") + rt.server_log()
    finally:
        rt.close()


# ---------------------------------------------------------------------------------------------- (d) statuses

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def api_store(tmp_path: Path) -> Iterator[HttpStore]:
    """The store API over HTTP (the real app, in process), so statuses are read as a client reads them."""
    sql = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    with TestClient(create_app(sql, api_key=KEY)) as client:
        store = HttpStore("http://testserver", api_key=KEY, client=client)
        store.create_work_pool(WorkPool(name="p"))
        store.create_work_queue(WorkQueue(work_pool="p", name="q", priority=5))
        yield store
    sql.close()


def poll(store: HttpStore, seconds: float) -> None:
    store.claim_runs("p", "w", limit=1, scheduled_before=at(seconds), now=at(seconds), work_queues=["q"])


def test_pool_and_worker_statuses_follow_heartbeats_and_pause(api_store: HttpStore) -> None:
    def statuses(seconds: float) -> tuple[str, list[tuple[str, str]]]:
        workers = [(w.name, w.status) for w in api_store.list_workers("p", at(seconds))]
        return api_store.work_pool_status("p", at(seconds)), workers

    assert statuses(0) == ("NOT_READY", [])
    api_store.heartbeat_worker("p", "w1", interval=10, now=at(0))
    assert statuses(29.9) == ("READY", [("w1", "ONLINE")])  # younger than 3 intervals
    api_store.update_work_pool("p", paused=True)
    assert statuses(1)[0] == "PAUSED"  # paused wins over an online worker
    api_store.update_work_pool("p", paused=False)
    assert statuses(1)[0] == "READY"
    assert statuses(30) == ("NOT_READY", [("w1", "OFFLINE")])  # 3 intervals without a heartbeat
    api_store.heartbeat_worker("p", "w2", interval=2, now=at(30))
    assert statuses(35.9) == ("READY", [("w1", "OFFLINE"), ("w2", "ONLINE")])
    assert statuses(36) == ("NOT_READY", [("w1", "OFFLINE"), ("w2", "OFFLINE")])


def test_queue_status_follows_polls_and_pause(api_store: HttpStore) -> None:
    def status(seconds: float) -> str:
        return api_store.work_queue_status("p", "q", at(seconds))

    assert status(0) == "NOT_READY"  # never polled
    poll(api_store, 0)
    assert (status(0), status(60), status(60.1)) == ("READY", "READY", "NOT_READY")
    assert api_store.work_queue_status("p", "default", at(0)) == "NOT_READY"  # a poll of q only
    poll(api_store, 100)
    assert status(100) == "READY"
    api_store.update_work_queue("p", "q", paused=True)
    assert status(100) == "PAUSED"


def test_unpausing_a_queue_gives_not_ready_until_polled(api_store: HttpStore) -> None:
    poll(api_store, 0)
    api_store.update_work_queue("p", "q", paused=True)
    poll(api_store, 5)  # a worker polling the pool while q is paused
    api_store.update_work_queue("p", "q", paused=False)
    assert api_store.work_queue_status("p", "q", at(6)) == "NOT_READY"
    poll(api_store, 7)
    assert api_store.work_queue_status("p", "q", at(7)) == "READY"


# ---------------------------------------------------------------------------------------------- (e) wake-ups


def test_a_run_due_now_wakes_an_idle_worker_long_before_its_next_poll(project: Path, tmp_path: Path) -> None:
    rt = Runtime(project, {"WP_HOME": str(tmp_path / "home")})
    try:
        rt.start_server()
        apply_project(rt)
        rt.start_worker("sleepy", "--poll-interval", "120")  # the last --poll-interval given wins
        with rt.api() as api:
            wait_for(lambda: "sleepy" in {w.name for w in api.list_workers("p", datetime.now(UTC))}, "worker")
            time.sleep(1.0)  # past its first poll: from here on only a wake-up can start a run
            started = time.monotonic()
            run = new_run(api, "work/high", "high", tag="now")
            wait_for(lambda: finished(api, [run]), "the run due now to finish", timeout=20)
            assert time.monotonic() - started < 20  # the worker's next poll is 2 minutes away
            assert_completed_with_logs(api, [run])
        # a worker's long-poll in flight must not hold up the server's shutdown
        stopped = time.monotonic()
        assert rt.stop_server() == 0, rt.server_log()
        assert time.monotonic() - stopped < 5, "the server waited for the worker's wake long-poll"
    finally:
        rt.close()
