"""`wp flow-run …`, `wp deployment run` and the `preview` commands of pools and queues; mounts `wp worker`.

Owns parsing the runtime commands' flags (`K=V` as JSON when it parses, `--start-in` durations) and following a
run's state and logs. The views of runs are `run_views.py`, the worker commands `workers.py`. Must never decide
run states itself: it asks the store, which asks `states.transition()`.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from reconciler.cli.context import (
    JsonOption,
    actor,
    console,
    err_console,
    fail,
    masking_patterns,
    now,
    open_store,
    print_json,
)
from reconciler.cli.run_views import (
    history_table,
    history_view,
    resolve_run,
    run_view,
    runs_table,
    state_markup,
)

if TYPE_CHECKING:
    from reconciler.model import Deployment, FlowRun
    from reconciler.store.base import Store

flow_run_app = typer.Typer(help="List, inspect, follow and cancel flow runs.", no_args_is_help=True)

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
RunArg = typer.Argument(..., metavar="RUN", help="The run's id, a unique prefix of it, or the run's name.")


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
UNITS = {
    "": 1,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


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
        print_json(run_view(run, masking_patterns(store)))
        return
    if not json_out:
        console.print(f"Created flow run [bold]{run.name}[/bold] ({run.id}) of {run.deployment}.")
    if watch:
        final = follow(store, run.id, show_logs=not json_out)
        if json_out:
            print_json(run_view(final, masking_patterns(store)))
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
    """The run's parameters against the flow's signature recorded at apply (else, for `--param`, read
    statically where the code is): a run that would fail with a TypeError is refused before it is created."""
    from reconciler.config.entrypoints import read_flow_function
    from reconciler.parameters import check_run_parameters

    schema = deployment.parameter_schema
    if schema is None and given:
        function = read_flow_function(_code_directory(deployment), deployment.entrypoint)
        schema = function.schema if function is not None else None
    problems = check_run_parameters(schema, values)
    for problem in problems:
        err_console.print(f"[bold red]Error:[/bold red] --param: {escape(problem)}")
    if problems:
        raise typer.Exit(1)


def _validate_run_job_variables(
    store: Store, pool_name: str, deployment_vars: dict[str, Any], run_vars: dict[str, Any]
) -> None:
    from reconciler.engine.template_variables import validate_job_variables

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
            console.print(f"{time.strftime('%H:%M:%S')} {run.name} is {state_markup(run.state)}")
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
                console.print(f"Flow run {run.name} finished in state {state_markup(run.state)}{tail}")
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
    store = open_store()
    runs = store.list_flow_runs(
        states=states,
        work_pool=pool,
        deployment=deployment,
        limit=limit,
        newest_first=sort is Sort.NEWEST,
    )
    patterns = masking_patterns(store)
    rows = [run_view(r, patterns) for r in runs]
    if json_out:
        print_json(rows)
    elif not rows:
        console.print("No flow runs.")
    else:
        console.print(runs_table("Flow runs", rows))


@flow_run_app.command("inspect")
def flow_run_inspect(run_id: str = RunArg, json_out: bool = JsonOption) -> None:
    """Show one flow run, its state history (every change: when, from, to, by whom, why) and the task runs of a
    Prefect flow (their final states and retries)."""
    store = open_store()
    run = resolve_run(store, run_id)
    changes = store.read_run_history(run.id)
    view = run_view(run, masking_patterns(store))
    tasks = task_runs(store, run.id)
    if json_out:
        print_json({**view, "history": history_view(changes), "task_runs": tasks})
        return
    console.print_json(json.dumps(view))
    console.print(history_table(run, changes))
    if tasks:
        table = Table(title="Task runs", title_justify="left")
        for col in ("Task run", "State", "Attempts", "Retries"):
            table.add_column(col, no_wrap=col != "Task run")
        for task in tasks:
            table.add_row(escape(task["name"]), task["state"], str(task["attempts"]), str(task["retries"]))
        console.print(table)


def task_runs(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The task runs a Prefect flow's run wrote to its output when it ended (`prefect_flows` writes them)."""
    from reconciler.runtime.prefect_flows import TASK_SUMMARY_PREFIX, read_task_summary

    found: list[dict[str, Any]] = []
    last_seq = -1
    while batch := store.read_logs(run_id, after_seq=last_seq, prefix=TASK_SUMMARY_PREFIX):
        for line in batch:
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
            run_id,
            target,
            message="cancelled by the user",
            expected=[run.state],
            now=now(),
            actor=f"{actor()} (wp flow-run cancel)",
        )
    if json_out:
        print_json(run_view(updated, masking_patterns(store)))
    else:
        console.print(f"Flow run {updated.name} ({updated.id}) is {state_markup(updated.state)}.")


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
    patterns = masking_patterns(store)
    return [run_view(r, patterns, at) for r in runs]


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
