"""Real Prefect flows (`@flow`, `@task`, `get_run_logger`, `log_prints`, retries, subflows) under a wp process worker.

The flows run with a real Prefect from a separate venv (tests/prefect_env.sh): the deployments' job `command`
names that venv's python, as a user's flow environment would. All scenarios run in one worker pass (one claim,
the runs side by side) to keep the suite fast; each test then checks one run's state and logs in the store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore
from tests.runtime.prefect_venv import prefect_python, runner_env

# The issue's flow, unchanged.
ETL = textwrap.dedent(
    """
    from prefect import flow, task, get_run_logger

    @task(retries=2)
    def extract(n: int) -> list[int]:
        return list(range(n))

    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    @flow(name="real-etl", log_prints=True)
    def etl(n: int = 5) -> int:
        logger = get_run_logger()
        t = total(extract(n))
        logger.info("total is %s", t)
        print(f"printed total {t}")
        return t
    """
)


def assert_the_issues_flow_completed(run: FlowRun, lines: list[str]) -> None:
    """The issue's flow (ETL, given n=4) completed as Prefect runs it, wherever it ran: its logger line and its
    print in the run's logs, Prefect's flow run named as the wp run, its two task runs Completed, and no temporary
    Prefect server."""
    text = "\n".join(lines)
    assert run.state == "COMPLETED", (run.state_message, text)
    assert any(line.endswith("total is 6") for line in lines), text  # get_run_logger(); n=4 was passed
    assert any(line.endswith("printed total 6") for line in lines), text  # log_prints
    assert f"Beginning flow run '{run.name}' for flow 'real-etl'" in text  # Prefect's run is the wp run
    summary = [line for line in lines if "wp: task run " in line]
    assert len(summary) == 2 and all(line.endswith(": Completed") for line in summary), text
    assert "temporary server" not in text and "does not serve" not in text


def assert_recovered_on_the_third_attempt(run: FlowRun, lines: list[str]) -> None:
    """The `recovers` flow completed: its task lost the connection twice and its retries got it through."""
    text = "\n".join(lines)
    assert run.state == "COMPLETED", (run.state_message, text)
    assert "attempt 1 lost the connection" in text and "attempt 2 lost the connection" in text
    assert any(line.endswith("ok on attempt 3") for line in lines), text
    assert any(
        "wp: task run 'flaky-" in line and line.endswith("Completed after 3 attempts") for line in lines
    ), text


MORE = textwrap.dedent(
    """
    import asyncio
    from datetime import date
    from pathlib import Path

    from prefect import flow, task, get_run_logger

    def _attempt(counter: str) -> int:
        path = Path(counter)
        n = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(n))
        return n

    @task(retries=2, retry_delay_seconds=0)
    def flaky(counter: str) -> str:
        n = _attempt(counter)
        if n < 3:
            raise ConnectionError(f"attempt {n} lost the connection")
        return f"ok on attempt {n}"

    @flow(log_prints=True)
    def recovers(counter: str) -> str:
        result = flaky(counter)
        print(result)
        return result

    @task(retries=1, retry_delay_seconds=0)
    def always_fails() -> None:
        raise RuntimeError("disk on fire")

    @flow
    def gives_up() -> None:
        always_fails()

    @flow
    def raises() -> None:
        get_run_logger().warning("about to raise")
        raise ValueError("the flow broke")

    @flow(log_prints=True)
    def child(x: int) -> int:
        print(f"child got {x}")
        return x * 2

    @flow(log_prints=True)
    def parent(x: int = 3) -> int:
        doubled = child(x)
        print(f"parent got {doubled}")
        return doubled

    @flow(log_prints=True)
    def typed(n: int, when: date, tags: list[str] = ["a"]) -> None:
        print(f"n={n!r} {type(n).__name__} when={when!r} tags={tags!r}")

    @task
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @flow(log_prints=True)
    async def async_flow(x: int) -> int:
        y = await slow_double(x)
        print(f"async result {y}")
        return y

    @flow(retries=1, retry_delay_seconds=0, log_prints=True)
    def retried_flow(counter: str) -> None:
        n = _attempt(counter)
        print(f"flow attempt {n}")
        if n < 2:
            raise ConnectionError("first flow attempt fails")

    @task
    def square(x: int) -> int:
        return x * x

    @flow(log_prints=True)
    def mapped(xs: list[int]) -> int:
        futures = square.map(xs)
        extra = square.submit(10)
        result = sum(f.result() for f in futures) + extra.result()
        print(f"mapped total {result}")
        return result

    @flow
    def needs_a_server() -> None:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact("# report", key="report")

    def plain(name: str = "world") -> None:
        print(f"plain hello {name}")
    """
)


pytestmark = pytest.mark.xdist_group("prefect-flows")  # one xdist worker: the fixtures are made once

WORKER_PASS_TIMEOUT = 240.0  # seconds; the pass takes seconds on an idle machine


@dataclass(frozen=True)
class Outcome:
    run: FlowRun
    logs: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.logs)


@dataclass(frozen=True)
class Pass:
    outcomes: dict[str, Outcome]
    db_url: str
    prefect_home: Path
    home: Path


def add_deployment(store: SqlStore, key: str, entrypoint: str, job_variables: dict[str, Any]) -> Deployment:
    deployment = Deployment(
        flow=key, name="d", entrypoint=entrypoint, work_pool="local", job_variables=job_variables
    )
    plan = Plan(
        project="test", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)
    )
    store.apply(
        plan, ApplyRecord(project="test", actor="tester", summary={"add": 1, "change": 0, "destroy": 0})
    )
    return deployment


def add_run(store: SqlStore, deployment: Deployment, parameters: dict[str, Any]) -> FlowRun:
    run_id = str(uuid.uuid4())
    return store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"run-{run_id[:6]}",
            flow=deployment.flow,
            deployment=f"{deployment.flow}/{deployment.name}",
            work_pool="local",
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC),
            parameters=parameters,
        )
    )


SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "etl": ("flows/etl.py:etl", {"n": 4}),
    "etl-defaults": ("flows/etl.py:etl", {}),
    "recovers": ("flows/more.py:recovers", {"counter": "{tmp}/recovers.count"}),
    "gives-up": ("flows/more.py:gives_up", {}),
    "raises": ("flows/more.py:raises", {}),
    "parent": ("flows/more.py:parent", {"x": 3}),
    "typed": ("flows/more.py:typed", {"n": "7", "when": "2026-01-02"}),
    "typed-bad": ("flows/more.py:typed", {"n": "seven", "when": "2026-01-02"}),
    "async": ("flows/more.py:async_flow", {"x": 21}),
    "retried-flow": ("flows/more.py:retried_flow", {"counter": "{tmp}/flow.count"}),
    "mapped": ("flows/more.py:mapped", {"xs": [1, 2, 3]}),
    "needs-a-server": ("flows/more.py:needs_a_server", {}),
    "plain": ("flows/more.py:plain", {"name": "wp"}),
}


@pytest.fixture(scope="module")
def worker_pass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pass]:
    """Every scenario as a deployment run, all run by one process worker pass."""
    python = prefect_python()
    tmp = tmp_path_factory.mktemp("prefect-flows")
    project = tmp / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "etl.py").write_text(ETL)
    (project / "flows" / "more.py").write_text(MORE)
    prefect_home, home = tmp / "prefect-home", tmp / "home"
    home.mkdir()
    job_variables = {
        "command": f"{python} -m reconciler.runtime.entry",
        # a fresh HOME and PREFECT_HOME: a Prefect server would leave its database there
        "env": {
            **runner_env(),
            "PREFECT_HOME": str(prefect_home),
            "HOME": str(home),
            "TMPDIR": str(tmp),  # this module's own warm server, which exits soon after
            "WP_PREFECT_WARM_IDLE": "15",
        },
    }
    db_url = f"sqlite:///{tmp / 'wp.db'}"
    store = SqlStore(db_url)
    store.create_work_pool(
        WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))
    )
    runs: dict[str, FlowRun] = {}
    for key, (entrypoint, parameters) in SCENARIOS.items():
        deployment = add_deployment(store, key, entrypoint, job_variables)
        parameters = {k: v.format(tmp=tmp) if isinstance(v, str) else v for k, v in parameters.items()}
        runs[key] = add_run(store, deployment, parameters)
    worker = Worker(
        store, WorkerOptions(pool="local", name="w1", poll_interval=0.1, run_once=True), cwd=str(project)
    )
    # a hung flow must fail the tests, not hang them: stop the worker (then kill its runs) after a while
    watchdog = threading.Timer(WORKER_PASS_TIMEOUT, lambda: (worker.request_stop(), worker.request_stop()))
    watchdog.start()
    try:
        worker.run()
    finally:
        watchdog.cancel()
    outcomes = {
        key: Outcome(store.get_flow_run(run.id), [line.message for line in store.read_logs(run.id)])
        for key, run in runs.items()
    }
    store.close()
    yield Pass(outcomes, db_url, prefect_home, home)


def test_the_issues_flow_completes_with_its_parameters_logger_and_prints_in_the_logs(
    worker_pass: Pass,
) -> None:
    etl = worker_pass.outcomes["etl"]
    assert_the_issues_flow_completed(etl.run, etl.logs)
    defaults = worker_pass.outcomes["etl-defaults"]
    assert defaults.run.state == "COMPLETED" and any(line.endswith("total is 10") for line in defaults.logs)


def test_task_runs_and_their_final_states_are_in_the_run_logs(worker_pass: Pass) -> None:
    etl = worker_pass.outcomes["etl"]
    summary = [line for line in etl.logs if line.startswith("wp: task run ")]
    assert len(summary) == 2, etl.text
    assert summary[0].startswith("wp: task run 'extract-") and summary[0].endswith(": Completed")
    assert summary[1].startswith("wp: task run 'total-") and summary[1].endswith(": Completed")


def test_a_failing_task_is_retried_as_declared_and_the_flow_completes(worker_pass: Pass) -> None:
    recovers = worker_pass.outcomes["recovers"]
    assert_recovered_on_the_third_attempt(recovers.run, recovers.logs)


def test_a_task_out_of_retries_fails_the_run_with_its_error(worker_pass: Pass) -> None:
    gives_up = worker_pass.outcomes["gives-up"]
    assert gives_up.run.state == "FAILED"
    assert gives_up.run.state_message == "RuntimeError: disk on fire"
    assert any(
        line.startswith("wp: task run 'always_fails-") and line.endswith("Failed after 2 attempts")
        for line in gives_up.logs
    )


def test_a_flow_that_raises_fails_the_run_with_the_error_and_traceback(worker_pass: Pass) -> None:
    raises = worker_pass.outcomes["raises"]
    assert raises.run.state == "FAILED"
    assert raises.run.state_message == "ValueError: the flow broke"
    assert any(line.endswith("about to raise") for line in raises.logs)
    assert "Traceback (most recent call last):" in raises.text


def test_subflows_run_inside_the_parent_run(worker_pass: Pass) -> None:
    parent = worker_pass.outcomes["parent"]
    assert parent.run.state == "COMPLETED", parent.text
    assert any(line.endswith("child got 3") for line in parent.logs)
    assert any(line.endswith("parent got 6") for line in parent.logs)
    assert "Beginning subflow run" in parent.text


def test_parameters_are_validated_and_coerced_by_the_flows_annotations(worker_pass: Pass) -> None:
    typed = worker_pass.outcomes["typed"]
    assert typed.run.state == "COMPLETED", typed.text
    assert any(line.endswith("n=7 int when=datetime.date(2026, 1, 2) tags=['a']") for line in typed.logs)
    bad = worker_pass.outcomes["typed-bad"]
    assert bad.run.state == "FAILED"
    message = bad.run.state_message or ""
    assert message.startswith("ParameterTypeError: Flow run received invalid parameters"), message
    assert "n: Input should be a valid integer" in message


def test_async_flows_and_tasks_run(worker_pass: Pass) -> None:
    outcome = worker_pass.outcomes["async"]
    assert outcome.run.state == "COMPLETED", outcome.text
    assert any(line.endswith("async result 42") for line in outcome.logs)


def test_flow_retries_rerun_the_flow_in_the_same_wp_run(worker_pass: Pass) -> None:
    outcome = worker_pass.outcomes["retried-flow"]
    assert outcome.run.state == "COMPLETED", outcome.text
    assert any(line.endswith("flow attempt 1") for line in outcome.logs)
    assert any(line.endswith("flow attempt 2") for line in outcome.logs)
    assert "AwaitingRetry" in outcome.text


def test_submit_and_map_run_on_the_default_task_runner(worker_pass: Pass) -> None:
    outcome = worker_pass.outcomes["mapped"]
    assert outcome.run.state == "COMPLETED", outcome.text
    assert any(line.endswith("mapped total 114") for line in outcome.logs)
    squares = [line for line in outcome.logs if line.startswith("wp: task run 'square-")]
    assert len(squares) == 4 and all(line.endswith(": Completed") for line in squares)


def test_a_prefect_feature_that_needs_a_server_fails_the_run_saying_so(worker_pass: Pass) -> None:
    outcome = worker_pass.outcomes["needs-a-server"]
    assert outcome.run.state == "FAILED"
    assert (
        "wp: Prefect's engine called POST /artifacts, which wp's local Prefect API does not serve"
        in outcome.logs
    )
    assert "without a Prefect server, and POST /artifacts needs one" in (outcome.run.state_message or "")


def test_a_plain_function_in_a_prefect_environment_runs_as_before(worker_pass: Pass) -> None:
    plain = worker_pass.outcomes["plain"]
    assert plain.run.state == "COMPLETED"
    assert "plain hello wp" in plain.logs


def test_no_prefect_server_or_database_is_started(worker_pass: Pass) -> None:
    for key, outcome in worker_pass.outcomes.items():
        assert "temporary server" not in outcome.text, key
        if key != "needs-a-server":  # every call the engine made was served
            assert "does not serve" not in outcome.text, (key, outcome.text)
    databases = list(worker_pass.prefect_home.rglob("*.db")) + list(worker_pass.home.rglob("*.db"))
    assert databases == []


def test_wp_flow_run_logs_shows_the_prefect_logs(worker_pass: Pass) -> None:
    run_id = worker_pass.outcomes["etl"].run.id
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env.update({"WP_DATABASE_URL": worker_pass.db_url, "COLUMNS": "200"})
    wp = Path(sys.executable).parent / "wp"
    shown = subprocess.run(
        [str(wp), "flow-run", "logs", run_id], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "total is 6" in shown.stdout and "printed total 6" in shown.stdout


def test_a_flow_importing_prefect_where_it_is_missing_fails_in_one_line(tmp_path: Path) -> None:
    """No Prefect venv needed: wp's own environment has no Prefect."""
    probe = subprocess.run([sys.executable, "-c", "import prefect"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("Prefect is installed in wp's own environment")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(ETL)
    read, write = os.pipe()
    env = {
        **os.environ,
        "WP_FLOW_RUN_ID": "run-1",
        "WP_ENTRYPOINT": "flows/etl.py:etl",
        "WP_REPORT_FD": str(write),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.runtime.entry"],
        cwd=tmp_path,
        env=env,
        pass_fds=(write,),
        capture_output=True,
        text=True,
        timeout=30,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        reports = pipe.read()
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "flows/etl.py imports Prefect, which is not installed" in lines[0]
    assert "pip_install_requirements" in lines[0]
    assert '"FAILED"' in reports and "imports Prefect" in reports


# ---------------------------------------------------------------------------------------------- warm interpreter

WARM = textwrap.dedent(
    """
    import os, time
    from prefect import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(log_prints=True)
    def whoami(x: int = 1) -> int:
        print(f"flow pid {os.getpid()} result {double(x)}")
        return x

    @flow(log_prints=True)
    def sleeps() -> None:
        print(f"flow pid {os.getpid()}", flush=True)
        time.sleep(60)
    """
)


@dataclass
class WarmSetup:
    store: SqlStore
    project: Path
    whoami: Deployment
    sleeps: Deployment
    tmp: Path
    cold: Outcome | None = None


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmSetup]:
    """A flow environment whose first run has started its warm server (and was handed to it)."""
    python = prefect_python()
    tmp = tmp_path_factory.mktemp("prefect-warm")
    project = tmp / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "warm.py").write_text(WARM)
    env = {
        **runner_env(),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "TMPDIR": str(tmp),  # this module's own warm server, which exits soon after the tests
        "WP_PREFECT_WARM_IDLE": "15",
    }
    job_variables = {"command": f"{python} -m reconciler.runtime.entry", "env": env}
    store = SqlStore(f"sqlite:///{tmp / 'wp.db'}")
    store.create_work_pool(
        WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))
    )
    setup = WarmSetup(
        store,
        project,
        add_deployment(store, "whoami", "flows/warm.py:whoami", job_variables),
        add_deployment(store, "sleeps", "flows/warm.py:sleeps", job_variables),
        tmp,
    )
    setup.cold = run_once(setup, setup.whoami, {"x": 1})
    wait_until_serving(tmp)  # the first run started a warm server, for itself and the next ones
    yield setup
    store.close()


def run_once(setup: WarmSetup, deployment: Deployment, parameters: dict[str, Any]) -> Outcome:
    run = add_run(setup.store, deployment, parameters)
    worker = Worker(
        setup.store,
        WorkerOptions(pool="local", name="w1", poll_interval=0.1, run_once=True),
        cwd=str(setup.project),
    )
    worker.run()
    return Outcome(setup.store.get_flow_run(run.id), [line.message for line in setup.store.read_logs(run.id)])


def process_and_flow_pids(outcome: Outcome) -> tuple[int, int]:
    started = next(m for m in outcome.logs if " as process " in m)
    printed = next(m for m in outcome.logs if "flow pid " in m)
    return int(started.rsplit(" ", 1)[1]), int(printed.split("flow pid ")[1].split()[0])


def wait_until_serving(tmp_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for sock in tmp_path.glob("wp-prefect-warm-*/*.sock"):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(str(sock))
                return
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.2)
    raise AssertionError("no warm Prefect server came up")


def test_later_runs_of_a_flow_environment_run_in_a_warm_interpreter(warm: WarmSetup) -> None:
    assert warm.cold is not None and warm.cold.run.state == "COMPLETED", warm.cold
    process, flow = process_and_flow_pids(warm.cold)
    # the first run started the server and waited for it rather than importing Prefect a second time beside it
    assert flow != process
    assert any(line.endswith("result 2") for line in warm.cold.logs), warm.cold.text

    second = run_once(warm, warm.whoami, {"x": 21})
    assert second.run.state == "COMPLETED", second.text
    process, flow = process_and_flow_pids(second)
    assert flow != process  # warm: a child forked from the server, with the run's output and states
    assert any(line.endswith("result 42") for line in second.logs)
    assert any(
        line.startswith("wp: task run 'double-") and line.endswith(": Completed") for line in second.logs
    )


def test_a_first_run_whose_server_cannot_listen_runs_cold(warm: WarmSetup) -> None:
    python = prefect_python()
    # no directory for the socket can be made under TMPDIR (a file has its name): no server can listen
    unusable = warm.tmp / "blocked"
    unusable.mkdir()
    (unusable / f"wp-prefect-warm-{os.getuid()}").write_text("not a directory")
    env = {**runner_env(), "PREFECT_HOME": str(warm.tmp / "prefect-home"), "TMPDIR": str(unusable)}
    deployment = add_deployment(
        warm.store,
        "whoami-cold",
        "flows/warm.py:whoami",
        {"command": f"{python} -m reconciler.runtime.entry", "env": env},
    )
    outcome = run_once(warm, deployment, {"x": 5})
    assert outcome.run.state == "COMPLETED", outcome.text
    process, flow = process_and_flow_pids(outcome)
    assert flow == process  # run in the worker's child itself
    assert any(line.endswith("result 10") for line in outcome.logs)


def test_cancelling_a_warm_run_stops_the_forked_flow(warm: WarmSetup) -> None:
    run = add_run(warm.store, warm.sleeps, {})
    worker = Worker(
        warm.store,
        WorkerOptions(pool="local", name="w1", poll_interval=0.1, run_once=True, cancel_check_interval=0.2),
        cwd=str(warm.project),
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        flow_pid = None
        while flow_pid is None and time.monotonic() < deadline:
            printed = [m for m in (line.message for line in warm.store.read_logs(run.id)) if "flow pid " in m]
            flow_pid = int(printed[0].split("flow pid ")[1].split()[0]) if printed else None
            time.sleep(0.1)
        assert flow_pid is not None, "the flow never started"
        process = int(
            next(m for m in (x.message for x in warm.store.read_logs(run.id)) if " as process " in m).rsplit(
                " ", 1
            )[1]
        )
        assert flow_pid != process  # it runs warm, forked from the server
        warm.store.set_run_state(run.id, "CANCELLING", now=datetime.now(UTC))
        thread.join(timeout=30)
    finally:
        if thread.is_alive():
            worker.request_stop()
            worker.request_stop()
            thread.join(timeout=30)
    assert warm.store.get_flow_run(run.id).state == "CANCELLED"
    deadline = time.monotonic() + 10
    while pid_alive(flow_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(flow_pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_inspect_shows_a_process_runs_task_runs_with_retries(worker_pass: Pass) -> None:
    from wp_cli import run_wp

    env = {"WP_DATABASE_URL": worker_pass.db_url, "COLUMNS": "200"}
    gives_up = run_wp(
        "flow-run", "inspect", worker_pass.outcomes["gives-up"].run.id, "--json", env=env
    ).json()
    assert [(t["state"], t["attempts"], t["retries"]) for t in gives_up["task_runs"]] == [("Failed", 2, 1)]
    mapped = run_wp("flow-run", "inspect", worker_pass.outcomes["mapped"].run.id, "--json", env=env).json()
    assert sorted(t["name"].split("-")[0] for t in mapped["task_runs"]) == ["square"] * 4


def test_a_task_summary_line_is_read_back_whatever_the_task_is_called() -> None:
    from reconciler.runtime.prefect_flows import read_task_summary

    assert read_task_summary('wp: task run "it\'s-1a2": Failed after 4 attempts') == {
        "name": "it's-1a2",
        "state": "Failed",
        "attempts": 4,
        "retries": 3,
    }
    assert read_task_summary("wp: task run 'x': Completed") == {
        "name": "x",
        "state": "Completed",
        "attempts": 1,
        "retries": 0,
    }
    assert read_task_summary("wp: task run x: Completed") is None
