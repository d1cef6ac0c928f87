"""`wp worker …`, `wp flow-run …`, `wp deployment run` and the `preview` commands of pools and queues.

Owns parsing the runtime commands' flags (`K=V` as JSON when it parses, `--start-in` durations), the run and
worker views (SPEC §4 field names; `--json` prints only JSON), following a run's logs, and mapping
SIGTERM/SIGINT to the worker's graceful stop. Must never decide run states itself: it asks the store, which
asks `states.transition()`.
"""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from reconciler.cli.context import JsonOption, console, err_console, fail, now, open_store, print_json

if TYPE_CHECKING:
    from reconciler.model import Deployment, FlowRun
    from reconciler.store.base import Store

worker_app = typer.Typer(help="Start workers and list them.", no_args_is_help=True)
flow_run_app = typer.Typer(help="List, inspect, follow and cancel flow runs.", no_args_is_help=True)

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
IN_HAND = ("PENDING", "RUNNING", "CANCELLING")
RunArg = typer.Argument(..., metavar="RUN", help="The run's id, a unique prefix of it, or the run's name.")


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


LATE_AFTER = timedelta(seconds=15)
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
UNITS = {
    "": 1,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


def register(app: typer.Typer, *, pools: typer.Typer, queues: typer.Typer, deployments: typer.Typer) -> None:
    """Mount `worker`, `flow-run`, and add `deployment run`, `work-pool preview`, `work-queue preview`."""
    app.add_typer(worker_app, name="worker")
    app.add_typer(flow_run_app, name="flow-run")
    deployments.command("run")(deployment_run)
    pools.command("preview")(work_pool_preview)
    queues.command("preview")(work_queue_preview)


# ---------------------------------------------------------------------------------------------- parsing


def parse_assignments(values: list[str], flag: str) -> dict[str, Any]:
    """`K=V` pairs; V is JSON when it parses (`seconds=2` is a number), else a string."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            fail(f"{flag} {item!r} is not KEY=VALUE", hint=f"e.g. {flag} retries=3 or {flag} name=nightly")
        try:
            result[key.strip()] = json.loads(raw)
        except ValueError:
            result[key.strip()] = raw
    return result


def parse_duration(text: str) -> timedelta:
    """`30`, `30s`, `5 minutes`, `2h`, `1 day`."""
    match = DURATION.match(text.lower())
    if not match or match.group(2) not in UNITS:
        fail(
            f"--start-in {text!r} is not a duration",
            hint="use seconds or e.g. '30s', '5 minutes', '2h', '1 day'",
        )
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])


# ---------------------------------------------------------------------------------------------- views


def run_view(run: FlowRun, at: datetime | None = None) -> dict[str, Any]:
    from reconciler.model import mask_secrets

    data = run.model_dump(mode="json")
    data["parameters"] = mask_secrets(data["parameters"])
    data["job_variables"] = mask_secrets(data["job_variables"])
    if at is not None:
        data["late"] = is_late(run, at)
    return data


def is_late(run: FlowRun, at: datetime) -> bool:
    return run.state == "LATE" or (run.state == "SCHEDULED" and run.expected_start_time + LATE_AFTER < at)


def _state(state: str) -> str:
    colour = {"COMPLETED": "green", "RUNNING": "blue", "FAILED": "red", "CRASHED": "red", "LATE": "yellow"}
    return f"[{colour.get(state, 'white')}]{state}[/]"


def runs_table(title: str, rows: list[dict[str, Any]], *, with_late: bool = False) -> Table:
    """Short ids (enough to name a run: `wp flow-run inspect` takes a prefix) and times relative to now."""
    at = now()
    table = Table(title=title, title_justify="left")
    for col in ("ID", "Name", "Deployment", "Pool / queue", "State", "Expected start"):
        table.add_column(col, no_wrap=col in ("ID", "Name", "State", "Expected start"))
    for r in rows:
        late = with_late and r.get("late") and r["state"] != "LATE"  # a LATE state says so itself
        state = _state(r["state"]) + (" [bold yellow](late)[/]" if late else "")
        table.add_row(
            r["id"][:8],
            r["name"],
            r["deployment"],
            f"{r['work_pool']} / {r['work_queue']}",
            state,
            relative_time(datetime.fromisoformat(r["expected_start_time"]), at),
        )
    return table


def relative_time(when: datetime, at: datetime) -> str:
    """`in 5 minutes`, `2 hours ago`: the largest whole unit."""
    seconds = (when - at).total_seconds()
    size = abs(seconds)
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if size >= length or unit == "second":
            n = int(size // length)
            text = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {text}" if seconds > 0 else f"{text} ago" if n else "now"
    return "now"


def resolve_run(store: Store, ref: str) -> FlowRun:
    """A run named by its id, its name or a unique prefix of its id; an ambiguous one lists the candidates."""
    found = store.list_flow_runs(match=ref, limit=11, newest_first=True)
    exact = [r for r in found if ref in (r.id, r.name)]
    if len(exact) == 1:
        return exact[0]
    if len(found) == 1:
        return found[0]
    if not found:
        fail(
            f"no flow run is named {ref!r} or has an id starting with it",
            hint="`wp flow-run ls` lists the runs",
        )
    listed = "\n".join(f"    {r.id[:8]}  {r.name}  {r.deployment}  {r.state}" for r in found[:10])
    more = " (and more)" if len(found) > 10 else ""
    fail(
        f"{ref!r} names more than one flow run{more}:\n{listed}",
        hint="give more of the id, or the run's name",
    )


# ---------------------------------------------------------------------------------------------- worker


@worker_app.command("start")
def worker_start(
    pool: str = typer.Option(..., "--pool", "-p", help="The work pool to take runs from."),
    work_queue: list[str] = typer.Option([], "--work-queue", "-q", help="Only these queues (repeatable)."),
    limit: int | None = typer.Option(None, "--limit", "-l", min=1, help="At most N runs at once."),
    name: str | None = typer.Option(None, "--name", "-n", help="The worker's name (default: random)."),
    type_: str | None = typer.Option(
        None, "--type", "-t", help="Refuse to start unless the pool has this type."
    ),
    prefetch_seconds: float = typer.Option(
        10.0, "--prefetch-seconds", min=0, help="Claim runs due this soon."
    ),
    run_once: bool = typer.Option(False, "--run-once", help="Claim once, run what was claimed, exit."),
    heartbeat_interval: float = typer.Option(
        30.0, "--heartbeat-interval", min=0.1, help="Seconds between heartbeats."
    ),
    poll_interval: float = typer.Option(0.5, "--poll-interval", min=0.05, help="Seconds between claims."),
) -> None:
    """Start a worker: heartbeat, claim due runs, start them, report states. SIGTERM stops it gracefully."""
    from reconciler.model import check_name
    from reconciler.runtime.worker import Worker, WorkerOptions

    if name is not None:
        try:
            check_name(name, "worker name")
        except ValueError as exc:
            fail(str(exc))
    options = WorkerOptions(
        pool=pool,
        name=name,
        queues=tuple(work_queue),
        limit=limit,
        type=type_,
        prefetch_seconds=prefetch_seconds,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        run_once=run_once,
    )
    worker = Worker(open_store(), options)
    worker.setup()

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


@worker_app.command("ls")
def worker_ls(
    pool: str | None = typer.Option(
        None, "--pool", "-p", help="Only this pool's workers (default: every pool)."
    ),
    all_: bool = typer.Option(False, "--all", "-a", help="Also list OFFLINE workers."),
    json_out: bool = JsonOption,
) -> None:
    """List workers with their status and the runs each has in hand; OFFLINE ones only with --all."""
    store = open_store()
    if pool is not None:
        store.get_work_pool(pool)  # a clear NotFoundError for a pool that does not exist
    at = now()
    pools = [pool] if pool is not None else [p.name for p in store.list_work_pools()]
    rows: list[dict[str, Any]] = []
    for name in pools:
        in_hand: dict[str, int] = {}
        for run in store.list_flow_runs(states=IN_HAND, work_pool=name, limit=10_000):
            if run.worker:
                in_hand[run.worker] = in_hand.get(run.worker, 0) + 1
        rows += [
            {
                "name": w.name,
                "work_pool": w.work_pool,
                "status": w.status,
                "last_heartbeat": w.last_heartbeat.isoformat(),
                "heartbeat_interval": w.heartbeat_interval,
                "runs_in_hand": in_hand.get(w.name, 0),
            }
            for w in store.list_workers(name, at)
        ]
    hidden = 0 if all_ else sum(1 for r in rows if r["status"] != "ONLINE")
    if not all_:
        rows = [r for r in rows if r["status"] == "ONLINE"]
    if json_out:
        print_json(rows)
        return
    where = f"work pool {escape(pool)}" if pool is not None else "any work pool"
    if not rows:
        console.print(f"No online workers on {where}.")
    else:
        table = Table(title="Workers", title_justify="left")
        for col in ("Pool", "Name", "Status", "Runs in hand", "Last heartbeat"):
            table.add_column(col)
        for r in rows:
            colour = "green" if r["status"] == "ONLINE" else "red"
            table.add_row(
                escape(str(r["work_pool"])),
                escape(str(r["name"])),
                f"[{colour}]{r['status']}[/]",
                str(r["runs_in_hand"]),
                relative_time(datetime.fromisoformat(str(r["last_heartbeat"])), at),
            )
        console.print(table)
    if hidden:
        console.print(f"{hidden} offline worker{'s' if hidden != 1 else ''} hidden; --all shows them.")


# ---------------------------------------------------------------------------------------- deployment run


def deployment_run(
    address: str = typer.Argument(..., metavar="FLOW/NAME"),
    param: list[str] = typer.Option([], "--param", help="K=V, V as JSON when it parses (repeatable)."),
    job_variable: list[str] = typer.Option(
        [], "--job-variable", help="K=V run-level job variable (repeatable)."
    ),
    start_in: str | None = typer.Option(None, "--start-in", help="Start later: '30s', '5 minutes', '2h'."),
    watch: bool = typer.Option(
        False, "--watch", help="Follow the run to a final state; exit 0 only if COMPLETED."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Create a flow run of a deployment."""
    store = open_store()
    run = create_run(
        store,
        address,
        parse_assignments(param, "--param"),
        parse_assignments(job_variable, "--job-variable"),
        start_in,
    )
    if json_out and not watch:
        print_json(run_view(run))
        return
    if not json_out:
        console.print(f"Created flow run [bold]{run.name}[/bold] ({run.id}) of {run.deployment}.")
    if watch:
        final = follow(store, run.id, show_logs=not json_out)
        if json_out:
            print_json(run_view(final))
        raise typer.Exit(0 if final.state == "COMPLETED" else 1)


def create_run(
    store: Store, address: str, params: dict[str, Any], job_vars: dict[str, Any], start_in: str | None
) -> FlowRun:
    from reconciler.runtime.scheduler import manual_run

    flow, sep, name = address.removeprefix("deployment.").partition("/")
    if not sep or not flow or not name:
        fail(f"{address!r} is not FLOW/NAME", hint="e.g. wp deployment run etl/nightly")
    deployment = store.get_deployment(flow, name)
    pool_name = deployment.work_pool or store.get_default_work_pool()
    if pool_name is None:
        fail(f"deployment {flow}/{name} names no work pool and no default pool is set",
             hint="set work_pool in the config or `wp work-pool create NAME --set-as-default`")  # fmt: skip
    if job_vars:
        _validate_run_job_variables(store, pool_name, deployment.job_variables, job_vars)
    _check_run_parameters(deployment, {**deployment.parameters, **params}, bool(params))
    delay = parse_duration(start_in) if start_in else timedelta(0)
    at = now()
    run = manual_run(
        deployment,
        pool_name,
        parameters=params,
        job_variables=job_vars,
        created=at,
        expected_start_time=at + delay,
    )
    return store.create_flow_run(run)


def _code_directory(deployment: Deployment) -> Path:
    """Where the deployment's code can be read on this machine: the absolute directory its first
    set_working_directory step names (what a prefect.yaml deployment records), else the current directory."""
    for step in deployment.pull_steps[:1]:
        for name, args in step.items():
            if name.rpartition(".")[2] == "set_working_directory" and isinstance(args, dict):
                directory = Path(str(args.get("directory", "")))
                if directory.is_absolute() and directory.is_dir():
                    return directory
    return Path.cwd()


def _check_run_parameters(deployment: Deployment, values: dict[str, Any], given: bool) -> None:
    """The run's parameters against the flow's signature, read statically where the code is; a run that
    would fail with a TypeError is refused before it is created. Code that is not here is not checked."""
    from reconciler.config.entrypoints import read_flow_function, run_parameter_problems

    if not given:
        return
    function = read_flow_function(_code_directory(deployment), deployment.entrypoint)
    if function is None:
        return
    problems = run_parameter_problems(function, values)
    for problem in problems:
        err_console.print(f"[bold red]Error:[/bold red] --param: {escape(problem)}")
    if problems:
        raise typer.Exit(1)


def _validate_run_job_variables(
    store: Store, pool_name: str, deployment_vars: dict[str, Any], run_vars: dict[str, Any]
) -> None:
    from reconciler.engine.template import validate_job_variables

    pool = store.get_work_pool(pool_name)
    if pool.base_job_template is None:
        return
    # `required` applies to what the run ends up with: the deployment's variables, overridden by the run's
    problems = validate_job_variables(pool.base_job_template, {**deployment_vars, **run_vars}, for_run=True)
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]Error:[/bold red] --job-variable: {escape(str(problem))}")
        raise typer.Exit(1)


NO_WORKER_AFTER = 5.0  # seconds a waiting run may go unclaimed before `--watch` says no worker serves it


def _no_worker_notice(store: Store, run: FlowRun) -> str | None:
    """What to tell a user whose run waits while no worker is online for its pool, else None."""
    workers = [w for w in store.list_workers(run.work_pool, now()) if w.status == "ONLINE"]
    if workers:
        return None
    queue = f" --work-queue {run.work_queue}" if run.work_queue != "default" else ""
    return (
        f"No worker is online for work pool {run.work_pool} (queue {run.work_queue}); the run waits until "
        f"one polls it. Start one: wp worker start --pool {run.work_pool}{queue}"
    )


def follow(store: Store, run_id: str, *, show_logs: bool, interval: float = 0.3) -> FlowRun:
    """Print the run's state changes and logs as they arrive until it reaches a final state; return it.
    A run nobody claims for a few seconds while no worker is online gets one notice saying how to start one."""
    last_seq = -1
    last_state: str | None = None
    started = time.monotonic()
    noticed = False
    while True:
        run = store.get_flow_run(run_id)
        if show_logs and run.state != last_state and run.state not in FINAL:
            console.print(f"{time.strftime('%H:%M:%S')} {run.name} is {_state(run.state)}")
        last_state = run.state
        waiting = run.state in ("SCHEDULED", "LATE") and run.expected_start_time <= now()
        if show_logs and waiting and not noticed and time.monotonic() - started >= NO_WORKER_AFTER:
            noticed = True
            notice = _no_worker_notice(store, run)
            if notice is not None:
                console.print(f"[yellow]{escape(notice)}[/yellow]", soft_wrap=True)
        for line in store.read_logs(run_id, after_seq=last_seq):
            last_seq = max(last_seq, line.seq)
            if show_logs:
                console.print(escape(line.message), soft_wrap=True)
        if run.state in FINAL:
            if show_logs:
                tail = f": {escape(run.state_message)}" if run.state_message else ""
                console.print(f"Flow run {run.name} finished in state {_state(run.state)}{tail}")
            return run
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------- flow-run


@flow_run_app.command("ls")
def flow_run_ls(
    state: list[str] = typer.Option([], "--state", help="Only runs in this state (repeatable)."),
    pool: str | None = typer.Option(None, "--pool", help="Only runs of this work pool."),
    deployment: str | None = typer.Option(None, "--deployment", help="Only runs of FLOW/NAME."),
    limit: int = typer.Option(
        50, "--limit", min=1, help="At most N runs (the newest, unless --sort oldest)."
    ),
    sort: Sort = typer.Option(Sort.NEWEST, "--sort", help="By expected start time: newest or oldest first."),
    json_out: bool = JsonOption,
) -> None:
    """List flow runs, newest first."""
    from reconciler.states import RunState

    states = [s.upper() for s in state]
    unknown = [s for s in states if s not in RunState.__members__]
    if unknown:
        fail(f"unknown state {', '.join(unknown)}", hint=f"states: {', '.join(RunState.__members__)}")
    runs = open_store().list_flow_runs(
        states=states,
        work_pool=pool,
        deployment=deployment,
        limit=limit,
        newest_first=sort is Sort.NEWEST,
    )
    rows = [run_view(r) for r in runs]
    if json_out:
        print_json(rows)
    elif not rows:
        console.print("No flow runs.")
    else:
        console.print(runs_table("Flow runs", rows))


@flow_run_app.command("inspect")
def flow_run_inspect(run_id: str = RunArg, json_out: bool = JsonOption) -> None:
    """Show one flow run, and the task runs of a Prefect flow (their final states and retries)."""
    store = open_store()
    view = run_view(resolve_run(store, run_id))
    view["task_runs"] = task_runs(store, view["id"])
    if json_out:
        print_json(view)
        return
    console.print_json(json.dumps({k: v for k, v in view.items() if k != "task_runs"}))
    if view["task_runs"]:
        table = Table(title="Task runs", title_justify="left")
        for col in ("Task run", "State", "Attempts", "Retries"):
            table.add_column(col, no_wrap=col != "Task run")
        for task in view["task_runs"]:
            table.add_row(escape(task["name"]), task["state"], str(task["attempts"]), str(task["retries"]))
        console.print(table)


def task_runs(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The task runs a Prefect flow's run wrote to its output when it ended (`prefect_flows` writes them)."""
    from reconciler.runtime.prefect_flows import TASK_SUMMARY_PREFIX, read_task_summary

    found: list[dict[str, Any]] = []
    last_seq = -1
    while batch := store.read_logs(run_id, after_seq=last_seq):
        for line in batch:
            if line.stream == "stdout" and line.message.startswith(TASK_SUMMARY_PREFIX):
                task = read_task_summary(line.message)
                if task is not None:
                    found.append(task)
        last_seq = max(line.seq for line in batch)
    return found


@flow_run_app.command("logs")
def flow_run_logs(
    run_id: str = RunArg,
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the run is final."),
    json_out: bool = JsonOption,
) -> None:
    """Print a flow run's logs."""
    store = open_store()
    run_id = resolve_run(store, run_id).id
    if follow_ and not json_out:
        follow(store, run_id, show_logs=True)
        return
    lines = []
    last_seq = -1
    while True:
        batch = store.read_logs(run_id, after_seq=last_seq)
        if not batch:
            break
        lines.extend(batch)
        last_seq = max(line.seq for line in batch)
    if json_out:
        print_json([line.model_dump(mode="json") for line in lines])
        return
    for line in lines:
        console.print(escape(line.message), soft_wrap=True)


@flow_run_app.command("cancel")
def flow_run_cancel(run_id: str = RunArg, json_out: bool = JsonOption) -> None:
    """Cancel a run: one not started yet becomes CANCELLED; a claimed or running one CANCELLING,
    and its worker stops the infrastructure within seconds."""
    store = open_store()
    run = resolve_run(store, run_id)
    run_id = run.id
    if run.state in FINAL:
        fail(f"flow run {run.name} ({run.id}) is already {run.state}; only unfinished runs can be cancelled")
    target = "CANCELLED" if run.state in ("SCHEDULED", "LATE") else "CANCELLING"
    if run.state == "CANCELLING":
        updated = run
    else:
        updated = store.set_run_state(
            run_id, target, message="cancelled by the user", expected=[run.state], now=now()
        )
    if json_out:
        print_json(run_view(updated))
    else:
        console.print(f"Flow run {updated.name} ({updated.id}) is {_state(updated.state)}.")


# ---------------------------------------------------------------------------------------------- previews


def _preview(store: Store, pool: str, queue: str | None, hours: float) -> list[dict[str, Any]]:
    at = now()
    runs = store.list_flow_runs(
        states=["SCHEDULED", "LATE"],
        work_pool=pool,
        work_queue=queue,
        before=at + timedelta(hours=hours),
        limit=1000,
    )
    runs.sort(key=lambda r: (r.expected_start_time, r.id))
    return [run_view(r, at) for r in runs]


def work_pool_preview(
    name: str = typer.Argument(..., metavar="NAME"),
    hours: float = typer.Option(1.0, "--hours", min=0, help="Look this many hours ahead."),
    json_out: bool = JsonOption,
) -> None:
    """The runs this pool will deliver in the next hours; late runs are marked."""
    store = open_store()
    store.get_work_pool(name)
    _print_preview(_preview(store, name, None, hours), f"Scheduled runs of work pool {name}", json_out)


def work_queue_preview(
    name: str = typer.Argument(..., metavar="NAME"),
    pool: str = typer.Option(..., "--pool", "-p", help="The queue's work pool."),
    hours: float = typer.Option(1.0, "--hours", min=0, help="Look this many hours ahead."),
    json_out: bool = JsonOption,
) -> None:
    """The runs this queue will deliver in the next hours; late runs are marked."""
    store = open_store()
    store.get_work_queue(pool, name)
    _print_preview(
        _preview(store, pool, name, hours), f"Scheduled runs of work queue {pool}/{name}", json_out
    )


def _print_preview(rows: list[dict[str, Any]], title: str, json_out: bool) -> None:
    if json_out:
        print_json(rows)
    elif not rows:
        console.print("No runs scheduled in that window.")
    else:
        console.print(runs_table(escape(title), rows, with_late=True))
