"""Overhead of running a real Prefect flow under wp's process and docker workers (issue 15), next to the same plain
function.

    python bench/prefect_flows.py [N_RUNS] [--ephemeral] [--no-docker] [--no-fresh] [--fresh-wait=SECONDS]

N_RUNS (default 5) runs of each, one at a time (interleaved), through an in-process `Worker` on an embedded SQLite store; the
flow-run processes use the Prefect venv's python (`WP_PREFECT_PYTHON`, else the cache of tests/prefect_env.sh).
Prints, asserting nothing:
- per run, expected start → COMPLETED (wall) as the store records it, p50 and max: the same undecorated function,
  a trivial `@flow` run cold (`WP_PREFECT_WARM=0`: a fresh interpreter imports Prefect) and warm (forked from the
  flow environment's warm server, which the first Prefect run started), and each flow's difference and ratio to
  the plain function's median (target: the flow within 1 s more); and, load-independent, the CPU seconds
  (user + sys) of the run's own process as the worker's reaped children (a warm run's forked child belongs
  to the warm server, so only its relay process counts there);
- the first run after a worker starts, as a user sees it (unless --no-fresh): `wp worker start` started as its
  own process (`--poll-interval 0.1`), FRESH_WAIT seconds of wait (3, or `--fresh-wait=S`), `wp deployment
  run`, expected start → COMPLETED; for the plain function, and for the flow in a flow environment with no warm
  server yet (a new one each time), which the worker pre-warms at its start; and when the worker said the
  environment was warm (within the wait);
- the same under a docker worker (unless --no-docker or no engine is reachable), in the Prefect test image of
  tests/docker_images.py --prefect (built, or reused, from the same venv): the plain function and the flow, each
  run in a fresh container (`WP_PREFECT_WARM=0`: a new interpreter imports Prefect), through an in-process worker
  per run; the image's first flow run is printed apart (files not yet in the page cache);
- the same under one `wp worker start` process with its default flags (a docker worker as a user runs it), the
  flow's runs served by the standby container the worker starts after a Prefect flow's run (which imports Prefect
  while it waits); each plain/flow pair starts STANDBY_WAIT seconds after the last flow run;
- where a Prefect flow's time goes: `import prefect`, and a trivial flow's first and later runs inside one process
  against wp's local API (CPU and wall);
- with --ephemeral: the same trivial flow called the way Prefect runs it without an API URL (its temporary server
  per process), for comparison. It can take tens of seconds, or time out on a loaded machine.
Figures are wall-clock on a shared machine: read them with `uptime`'s load average, printed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/docker_images.py builds the docker rows' image
CODE = textwrap.dedent(
    """
    from prefect import flow

    def plain(x: int = 1) -> int:
        return x + 1

    @flow
    def trivial(x: int = 1) -> int:
        return x + 1
    """
)
PLAIN_CODE = "def plain(x: int = 1) -> int:\n    return x + 1\n"
IN_PROCESS = textwrap.dedent(
    """
    import io, sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    import prefect
    t1, c1 = time.perf_counter(), time.process_time()
    sys.path.insert(0, "flows")
    from trivial import trivial
    from reconciler.runtime import prefect_flows
    for i in range(4):
        w, c = time.perf_counter(), time.process_time()
        prefect_flows.run_flow(trivial, {"x": i}, {"WP_FLOW_RUN_NAME": f"bench-{i}"}, out=io.StringIO())
        print(f"run {i}: {time.perf_counter() - w:.3f} s wall, {time.process_time() - c:.3f} s CPU")
    print(f"import prefect: {t1 - t0:.3f} s wall, {c1 - c0:.3f} s CPU")
    """
)
EPHEMERAL = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    sys.path.insert(0, "flows")
    from trivial import trivial
    t1 = time.perf_counter()
    trivial()
    print(f"Prefect's temporary server: import {t1 - t0:.2f} s, first flow run {time.perf_counter() - t1:.2f} s")
    """
)


def prefect_python() -> str:
    given = os.environ.get("WP_PREFECT_PYTHON")
    if given:
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    python = cache / "wp-test" / "prefect-3.9.1" / "bin" / "python"
    if not python.exists():
        sys.exit(f"no Prefect venv at {python}: run `bash tests/prefect_env.sh` or set WP_PREFECT_PYTHON")
    return str(python)


def add(
    store: SqlStore, key: str, entrypoint: str, job_variables: dict[str, object], pool: str = "local"
) -> Deployment:
    deployment = Deployment(
        flow=key, name="d", entrypoint=entrypoint, work_pool=pool, job_variables=job_variables
    )
    plan = Plan(
        project="bench", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)
    )
    store.apply(
        plan, ApplyRecord(project="bench", actor="bench", summary={"add": 1, "change": 0, "destroy": 0})
    )
    return deployment


def wait_until_serving(tmp: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in tmp.glob("wp-prefect-warm-*/*.sock"):
            probe = socket.socket(socket.AF_UNIX)
            with contextlib.suppress(OSError):
                probe.connect(str(path))
                probe.close()
                return
            probe.close()
        time.sleep(0.2)
    sys.exit("the warm Prefect server did not come up")


def new_run(store: SqlStore, deployment: Deployment, pool: str) -> str:
    """A run of `deployment` due now, with the trivial flows' parameter; its id."""
    run_id = str(uuid.uuid4())
    store.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"bench-{run_id[:6]}",
            flow=deployment.flow,
            deployment=f"{deployment.flow}/{deployment.name}",
            work_pool=pool,
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC),
            parameters={"x": 1},
        )
    )
    return run_id


def one_run(store: SqlStore, deployment: Deployment, project: Path, pool: str = "local") -> float:
    """Seconds from the run's expected start to its COMPLETED, as the store records them."""
    run_id = new_run(store, deployment, pool)
    options = WorkerOptions(pool=pool, name="bench", poll_interval=0.05, run_once=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    Worker(store, options, cwd=str(project), out=open(os.devnull, "w")).run()  # noqa: SIM115
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(deployment.flow, []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    run = store.get_flow_run(run_id)
    if run.state != "COMPLETED" or run.end_time is None:
        sys.exit(f"{deployment.flow}: run ended {run.state}: {run.state_message}")
    return (run.end_time - run.expected_start_time).total_seconds()


CPU: dict[str, list[float]] = {}  # deployment's flow name -> CPU seconds of each run's reaped processes


def report(times: dict[str, list[float]], flows: tuple[str, ...]) -> None:
    for name, values in times.items():
        print(
            f"  {name:>20}: expected start -> COMPLETED p50 {statistics.median(values):.2f} s, "
            f"min-max {min(values):.2f}-{max(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})"
        )
    plain_p50 = statistics.median(times["plain function"])
    for name in flows:
        p50 = statistics.median(times[name])
        print(
            f"  {name} - plain function (p50): {p50 - plain_p50:+.2f} s (target <= +1.00 s); "
            f"ratio {p50 / plain_p50:.1f}x"
        )


def docker_pool(
    store: SqlStore, project: Path, python: str, prefix: str
) -> tuple[Any, str, dict[str, object]] | str:
    """(the Docker client, a new docker pool, job variables that run the project's flows in the Prefect test
    image built from `python`); or why there is none (no engine reachable)."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        return f"no engine reachable ({exc})"
    from tests.docker_images import mounted_project, prefect_image

    image, _ = prefect_image(client, python)
    pool = f"{prefix}-{uuid.uuid4().hex[:6]}"
    store.create_work_pool(
        WorkPool(name=pool, type="docker", base_job_template=default_base_job_template("docker"))
    )
    return client, pool, {**mounted_project(image, project), "auto_remove": True}


def docker_rows(store: SqlStore, project: Path, python: str, n: int) -> dict[str, list[float]] | None:
    """The plain function and the flow under a docker worker; None (said why) without an engine."""
    found = docker_pool(store, project, python, "bench-prefect")
    if isinstance(found, str):
        print(f"docker worker: skipped, {found}")
        return None
    client, pool, variables = found
    project.chmod(0o755)
    (project / "flows").chmod(0o755)
    # these rows are every run cold: no standby container (each run's worker stops after it, removing one anyway)
    cold = {**variables, "env": {"WP_PREFECT_WARM": "0"}}
    plain = add(store, "docker-plain", "flows/plain.py:plain", cold, pool)
    flow = add(store, "docker-trivial", "flows/trivial.py:trivial", cold, pool)
    times: dict[str, list[float]] = {"plain function": [], "Prefect flow, cold": []}
    try:
        first = one_run(store, flow, project, pool)
        print(f"docker worker: first Prefect flow run in the image: {first:.2f} s")
        for _ in range(n):
            times["plain function"].append(one_run(store, plain, project, pool))
            times["Prefect flow, cold"].append(one_run(store, flow, project, pool))
    finally:
        remove_containers(client, pool)
    return times


FRESH_WAIT = 3.0  # seconds between starting `wp worker start` and asking for the run


def fresh_worker_rows(
    store: SqlStore, db_url: str, tmp: Path, project: Path, python: str, env: dict[str, str], n: int
) -> dict[str, list[float]]:
    """The first run after `wp worker start` (a whole process), FRESH_WAIT s after its start: the plain function,
    and the flow in a flow environment no server serves yet (its own TMPDIR each time), which the worker
    pre-warms when it starts."""
    wp = str(Path(sys.executable).parent / "wp")
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    cli_env["WP_DATABASE_URL"] = db_url
    times: dict[str, list[float]] = {"plain function": [], "Prefect flow, pre-warmed": []}
    warm_before_run = 0
    warm_after: list[
        float
    ] = []  # seconds from `wp worker start` to its "Prefect is warm" line, within the wait
    for i in range(n):
        for row, code in (("plain function", "plain"), ("Prefect flow, pre-warmed", "trivial")):
            pool = f"fresh-{code}-{i}"
            store.create_work_pool(
                WorkPool(name=pool, type="process", base_job_template=default_base_job_template("process"))
            )
            own_tmp = tmp / pool  # a new flow environment: no warm server serves it yet
            own_tmp.mkdir()
            variables = {
                "command": f"{python} -m reconciler.runtime.entry",
                "env": {**env, "TMPDIR": str(own_tmp)},
            }
            deployment = add(store, pool, f"flows/{code}.py:{code}", variables, pool)
            said = tmp / f"{pool}.out"
            with said.open("w") as out:
                worker = subprocess.Popen(
                    [wp, "worker", "start", "--pool", pool, "--poll-interval", "0.1"],
                    cwd=project,
                    env=cli_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                started = time.monotonic()
                while time.monotonic() - started < FRESH_WAIT:
                    if code == "trivial" and len(warm_after) <= i and "Prefect is warm" in said.read_text():
                        warm_after.append(time.monotonic() - started)
                    time.sleep(0.02)
                asked = subprocess.run(
                    [wp, "deployment", "run", f"{deployment.flow}/{deployment.name}", "--json"],
                    env=cli_env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if asked.returncode != 0:
                    sys.exit(f"wp deployment run failed: {asked.stderr}")
                run_id = json.loads(asked.stdout)["id"]
                deadline = time.monotonic() + 120
                run = store.get_flow_run(run_id)
                while run.state not in ("COMPLETED", "FAILED", "CRASHED") and time.monotonic() < deadline:
                    time.sleep(0.05)
                    run = store.get_flow_run(run_id)
                if run.state != "COMPLETED" or run.end_time is None:
                    sys.exit(f"{pool}: run ended {run.state}: {run.state_message}\n{said.read_text()}")
                times[row].append((run.end_time - run.expected_start_time).total_seconds())
            finally:
                worker.terminate()
                worker.wait(60)
            output = said.read_text()
            for line in output.splitlines():  # the pre-warmed server: gone with this environment
                if line.startswith("Prefect is warm for ") and "server pid " in line:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(line.rsplit("server pid ", 1)[1]), signal.SIGTERM)
                    warm_before_run += output.index(line) < output.index("claimed ")
    within = ", ".join(f"{t:.2f}" for t in warm_after) or "never"
    print(
        f"first run after `wp worker start` ({FRESH_WAIT:.0f} s after it): the worker said its flow "
        f"environment was warm before claiming the run in {warm_before_run} of {n}; "
        f"within the wait, s after the worker's start: {within}"
    )
    return times


def remove_containers(client: Any, pool: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"io.wp.work-pool={pool}"}):
        container.remove(force=True)


def served_run(store: SqlStore, deployment: Deployment, pool: str) -> float:
    """One run served by a running worker process: seconds from its expected start to its COMPLETED."""
    run_id = new_run(store, deployment, pool)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = store.get_flow_run(run_id)
        if run.state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            if run.state != "COMPLETED" or run.end_time is None:
                sys.exit(f"{deployment.flow}: run ended {run.state}: {run.state_message}")
            # a cold container is started under the run's name, a standby is known by its id at once
            started = [line.message for line in store.read_logs(run_id) if " as docker " in line.message]
            if started and re.search(r" as docker [0-9a-f]{64}$", started[0]):
                SERVED[deployment.flow] = SERVED.get(deployment.flow, 0) + 1
            return (run.end_time - run.expected_start_time).total_seconds()
        time.sleep(0.02)
    sys.exit(f"{deployment.flow}: the run did not end in 300 s")


SERVED: dict[str, int] = {}  # deployment's flow name -> runs served by a standby container


def docker_standby_rows(
    store: SqlStore, home: Path, project: Path, python: str, n: int
) -> dict[str, list[float]] | None:
    """The plain function and the flow under one `wp worker start` process with its default flags, as a user runs
    it: after a Prefect flow's run, its next run is served by the standby container the worker started; each
    pair of runs comes STANDBY_WAIT seconds after the last flow run (the standby imports Prefect meanwhile)."""
    found = docker_pool(store, project, python, "bench-standby")
    if isinstance(found, str):
        return None
    client, pool, variables = found
    plain = add(store, "standby-plain", "flows/plain.py:plain", variables, pool)
    flow = add(store, "standby-trivial", "flows/trivial.py:trivial", variables, pool)
    env = {k: v for k, v in os.environ.items() if k not in ("WP_API_URL", "WP_DATABASE_URL")}
    env["WP_HOME"] = str(home)
    worker = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli.main", "worker", "start", "--pool", pool],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: dict[str, list[float]] = {"plain function": [], "Prefect flow, standby": []}
    try:
        first = served_run(store, flow, pool)
        print(f"docker worker process: first Prefect flow run (cold; starts the standby): {first:.2f} s")
        for _ in range(n):
            time.sleep(STANDBY_WAIT)
            times["plain function"].append(served_run(store, plain, pool))
            times["Prefect flow, standby"].append(served_run(store, flow, pool))
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        remove_containers(client, pool)
    return times


STANDBY_WAIT = 10.0  # seconds between a flow's run and the next pair: a standby imports Prefect in 2-5 s here


def main() -> None:
    global FRESH_WAIT
    for arg in sys.argv[1:]:
        if arg.startswith("--fresh-wait="):
            FRESH_WAIT = float(arg.split("=", 1)[1])
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 5
    python = prefect_python()
    print(
        f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
        f"{os.cpu_count()} CPUs; {n} runs of each; flow python {python}"
    )
    with tempfile.TemporaryDirectory(prefix="wp-bench-prefect-") as tmp:
        project = Path(tmp) / "project"
        (project / "flows").mkdir(parents=True)
        (project / "flows" / "trivial.py").write_text(CODE)
        (project / "flows" / "plain.py").write_text(PLAIN_CODE)
        env = {
            "PYTHONPATH": str(REPO),
            "PREFECT_HOME": str(Path(tmp) / "prefect-home"),
            "TMPDIR": tmp,  # the bench's own warm server, which exits 120 s after its last run
            "WP_PREFECT_WARM_IDLE": "120",  # longer than a round of cold runs on a loaded machine
        }
        job_variables = {"command": f"{python} -m reconciler.runtime.entry", "env": env}
        cold_variables = {**job_variables, "env": {**env, "WP_PREFECT_WARM": "0"}}
        # the same cold run without prefect_lean's savings, for comparison
        unlean_variables = {**job_variables, "env": {**env, "WP_PREFECT_WARM": "0", "WP_PREFECT_LEAN": "0"}}
        store = SqlStore(f"sqlite:///{Path(tmp) / 'wp.db'}")
        for pool in ("local", "warm"):
            store.create_work_pool(
                WorkPool(name=pool, type="process", base_job_template=default_base_job_template("process"))
            )
        plain = add(store, "plain", "flows/plain.py:plain", job_variables)  # same python, no Prefect import
        cold = add(store, "cold", "flows/trivial.py:trivial", cold_variables)
        unlean = add(store, "unlean", "flows/trivial.py:trivial", unlean_variables)
        # its own pool: a worker pre-warms its pool's Prefect deployments, and the CPU of that (a short process
        # per worker start) must not count in the plain and cold rows' CPU
        warm = add(store, "trivial", "flows/trivial.py:trivial", job_variables, "warm")
        # the worker pre-warms as it starts, and the run is claimed at once: the run finds the server starting
        first = one_run(store, warm, project, "warm")
        wait_until_serving(Path(tmp))
        times: dict[str, list[float]] = {
            "plain function": [],
            "Prefect flow, cold": [],
            "Prefect flow, warm": [],
        }
        for _ in range(n):  # interleaved, so load changes hit all alike
            times["plain function"].append(one_run(store, plain, project))
            times["Prefect flow, cold"].append(one_run(store, cold, project))
            one_run(store, unlean, project)  # its CPU only
            times["Prefect flow, warm"].append(one_run(store, warm, project, "warm"))
        fresh_times = None
        if "--no-fresh" not in sys.argv:
            db_url = f"sqlite:///{Path(tmp) / 'wp.db'}"
            fresh_times = fresh_worker_rows(store, db_url, Path(tmp), project, python, env, n)
        docker_times = None if "--no-docker" in sys.argv else docker_rows(store, project, python, n)
        standby_times = (
            None if "--no-docker" in sys.argv else docker_standby_rows(store, Path(tmp), project, python, n)
        )
        store.close()
        print(
            f"first Prefect run of the flow environment (worker --run-once: pre-warm and run at once): {first:.2f} s"
        )
        print("process worker:")
        report(times, ("Prefect flow, cold", "Prefect flow, warm"))
        cpu = {key: statistics.median(CPU[key]) for key in ("plain", "cold", "unlean")}
        print(
            f"  CPU of the run's process, p50: plain function {cpu['plain']:.2f} s, Prefect flow cold "
            f"{cpu['cold']:.2f} s ({cpu['cold'] - cpu['plain']:+.2f} s, ratio {cpu['cold'] / cpu['plain']:.1f}x); "
            f"cold with WP_PREFECT_LEAN=0 {cpu['unlean']:.2f} s ({cpu['unlean'] - cpu['plain']:+.2f} s)"
        )
        if fresh_times is not None:
            print(
                f"process worker, first run after `wp worker start` (a whole process, {FRESH_WAIT:.0f} s before the run):"
            )
            report(fresh_times, ("Prefect flow, pre-warmed",))
        if docker_times is not None:
            print("docker worker (a fresh container, so a cold interpreter, per run; no warm server):")
            report(docker_times, ("Prefect flow, cold",))
        if standby_times is not None:
            print(
                f"docker worker process, standby containers (`wp worker start`, default flags; "
                f"{STANDBY_WAIT:g} s between a flow's run and the next pair):"
            )
            report(standby_times, ("Prefect flow, standby",))
            print(f"  flow runs served by a standby container: {SERVED.get('standby-trivial', 0)} of {n}")

        print("inside one flow-run process (wp's local Prefect API):")
        proc_env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(Path(tmp) / "prefect-home")}
        result = subprocess.run(
            [python, "-c", IN_PROCESS], cwd=project, env=proc_env, capture_output=True, text=True, timeout=300
        )
        print(textwrap.indent(result.stdout.strip() or result.stderr[-2000:], "  "))

        if "--ephemeral" in sys.argv:
            eph_env = {k: v for k, v in proc_env.items() if not k.startswith("PREFECT_API")}
            eph_env["PREFECT_HOME"] = str(Path(tmp) / "prefect-home-ephemeral")
            started = time.perf_counter()
            result = subprocess.run(
                [python, "-c", EPHEMERAL],
                cwd=project,
                env=eph_env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            total = time.perf_counter() - started
            lines = [line for line in result.stdout.splitlines() if "temporary server" in line]
            errors = [line for line in result.stderr.splitlines() if "Error" in line] or ["(no error line)"]
            failed = "" if result.returncode == 0 else f" — FAILED: {errors[-1].strip()}"
            print(
                f"  {lines[0] if lines else 'Prefect temporary server'}; process total {total:.2f} s{failed}"
            )


if __name__ == "__main__":
    main()
