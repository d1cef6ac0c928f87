"""Prefect flows under wp: run an `@flow` object in the flow-run process with Prefect's engine, no Prefect server.

Owns what makes a real Prefect flow (`@flow`, `@task`, `get_run_logger()`, `log_prints`, task and flow
retries, subflows) run inside `reconciler.runtime.entry`: telling a Prefect `Flow` from a plain function without
importing Prefect, the one-line error when a flow's code needs Prefect that is not installed, and a run-scoped
local Prefect API that the flow engine talks to instead of a Prefect server.

How (the choice and why): Prefect's engine needs an API for flow runs and their states (it creates the run,
proposes every state change, reads the run back); with no `PREFECT_API_URL` it starts a temporary server with a
database per run (seconds of start-up, and the states end in a throwaway database). Here the flow-run process
serves the small subset of Prefect's REST API its engine calls (`prefect_api`: flows, flow runs, task runs,
set_state with the retry and scheduled-wait rules) on 127.0.0.1 from a thread, in memory, for the life of the run,
and points `PREFECT_API_URL` at it (environment, then Prefect's global settings re-read). Task-run state changes, which Prefect 3 sends as events, stay in memory (Prefect's
in-memory events client, not a websocket); every task run's final state is written to the run's output when the
flow ends. Flow-run heartbeats are off: wp's worker watches the process itself.
Prefect's console logger writes `get_run_logger()` lines and `log_prints` output to stderr, which wp already
ships as the run's logs; the top-level flow's outcome is the run's wp state, reported by `entry` as for any
function (COMPLETED, or FAILED with the flow's error). So a container run still needs no route to wp and no
key (SPEC §5): nothing leaves the process but its output.

Runs on any Python Prefect supports; stdlib-only at import time (it is shipped with the container runner);
Prefect is imported only when the entrypoint object is a Prefect flow.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

from reconciler.runtime import prefect_lean

# For the type checker only (mypy reads any `TYPE_CHECKING` as true): every flow-run process imports this module,
# and `typing` is half a megabyte of each.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, TextIO

    # imported when a flow runs: http.server costs a plain function's run a tenth of a second
    from reconciler.runtime.prefect_api import RunRecords

SUPPORTED_PREFECT = ">=3.9,<4"
RUNNER_MARK = "__wp_prefect_flow__"  # set on the function `runner_for` returns: a Prefect flow's run  # stated in the README; tested with 3.9.1

# Prefect settings for a run under wp; a value the user set in the job's env wins over these defaults.
PREFECT_DEFAULTS = {
    "PREFECT_LOGGING_TO_API_ENABLED": "false",  # the console lines are the run's logs already
    "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false",
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    "PREFECT_LOGGING_COLORS": "false",  # logs are stored as text, not terminal escapes
    "PREFECT_UI_URL": "",  # no "View at <url>" line: there is no Prefect UI for these runs
    "DO_NOT_TRACK": "1",  # no telemetry traffic from a run
}

FINAL_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
TASK_SUMMARY_PREFIX = "wp: task run "
_TASK_SUMMARY = re.compile(
    r"^wp: task run (?P<name>'.*'|\".*\"): (?P<state>[A-Za-z]+)(?: after (?P<attempts>\d+) attempts)?$"
)
_UNSUPPORTED_NOTICE = (
    "wp: Prefect's engine called {method} {path}, which wp's local Prefect API does not serve"
)


class PrefectMissingError(Exception):
    """The flow's code imports Prefect, which is not installed in the flow's environment."""


def is_prefect_flow(obj: object) -> bool:
    """True for a `prefect.flows.Flow` (or subclass) instance, told by its class so Prefect is not imported."""
    return any(cls.__module__ == "prefect.flows" and cls.__name__ == "Flow" for cls in type(obj).__mro__)


def missing_prefect(exc: ModuleNotFoundError, where: str) -> PrefectMissingError | None:
    """The one-line error for code that imports Prefect where it is not installed; None for other modules."""
    if (exc.name or "").split(".")[0] != "prefect":
        return None
    return PrefectMissingError(
        f"{where} imports Prefect, which is not installed for {sys.executable}: install prefect{SUPPORTED_PREFECT} "
        "in the flow's environment (its image or the job's command), or add a pip_install_requirements pull step"
    )


def runner_for(flow: Any, env: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """A function of the run's parameters that runs `flow` with Prefect's engine against a local API."""

    def run(**parameters: Any) -> Any:
        return run_flow(flow, parameters, os.environ if env is None else env)

    setattr(run, RUNNER_MARK, True)
    return run


def run_flow(
    flow: Any, parameters: Mapping[str, Any], env: Mapping[str, str], out: TextIO | None = None
) -> Any:
    """Call the flow (Prefect validates and coerces its parameters) inside a run-scoped local API."""
    out = out or sys.stdout
    run_name = env.get("WP_FLOW_RUN_NAME") or None
    prefect_lean.lean_flow_calls()
    with local_prefect_api(run_id=env.get("WP_FLOW_RUN_ID", ""), run_name=run_name), _no_heartbeats():
        try:
            result = flow(**parameters)
            if _is_awaitable(result):
                import asyncio

                result = asyncio.run(_await(result))
            return result
        finally:
            _drain_events()
            write_task_summary(out)


def write_task_summary(out: TextIO) -> None:
    """One line per task run with its final state: the run's task runs, kept in its logs (and read back from
    there by `read_task_summary` for `wp flow-run inspect`)."""
    for name, state, attempts in task_run_states():
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        print(f"{TASK_SUMMARY_PREFIX}{name!r}: {state}{tries}", file=out, flush=True)


def read_task_summary(line: str) -> dict[str, Any] | None:
    """A task run (name, state, attempts, retries) from one summary line of a run's stdout; None for others."""
    match = _TASK_SUMMARY.match(line)
    if match is None:
        return None
    import ast

    try:
        name = ast.literal_eval(match.group("name"))
    except (ValueError, SyntaxError):
        return None
    attempts = int(match.group("attempts") or 1)
    return {"name": str(name), "state": match.group("state"), "attempts": attempts, "retries": attempts - 1}


def _is_awaitable(value: Any) -> bool:
    import inspect

    return inspect.isawaitable(value)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _drain_events() -> None:
    """Wait for the events worker to hand every task-run state event to our client."""
    import logging

    from prefect.events.worker import EventsWorker

    # its "Still processing items" warning is about this wait, not about the flow: keep it out of the run's logs
    logging.getLogger(EventsWorker.__name__).setLevel(logging.ERROR)
    with contextlib.suppress(Exception):  # an events hiccup must not change the run's outcome
        EventsWorker.drain_all(timeout=10)


@contextlib.contextmanager
def local_prefect_api(run_id: str = "", run_name: str | None = None) -> Iterator[RunRecords]:
    """Serve the run's Prefect API on 127.0.0.1 and point Prefect at it (settings, events) for the block."""
    import prefect

    # Here, not at the top: the API server (http.server and what it imports) is for Prefect flows only, and
    # every flow-run process imports this module to tell a Prefect flow from a plain function.
    from reconciler.runtime.prefect_api import RunRecords, serve

    records = RunRecords(run_id, run_name)
    server, url = serve(records, prefect.__version__)  # the client checks the server's major version
    settings = {**PREFECT_DEFAULTS, "PREFECT_API_URL": url}
    previous = {k: os.environ.get(k) for k in settings}
    for key, value in settings.items():
        if key == "PREFECT_API_URL" or key not in os.environ:
            os.environ[key] = value
    _refresh_prefect_settings()
    _record_events()
    try:
        yield records
    finally:
        server.shutdown()
        server.server_close()
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _no_heartbeats() -> Iterator[None]:
    """Flow-run heartbeats let a Prefect server detect a crashed run; wp's worker watches the process instead,
    and the heartbeat thread holds a run's end for up to a second. Only a settings context can turn them off
    (the environment cannot say "none"); the engine copies it into the heartbeat thread."""
    from prefect.context import SettingsContext, get_settings_context

    current = get_settings_context()
    settings = current.settings
    # a copy without validation: Prefect's temporary_settings re-reads the whole environment (a tenth of a second)
    quiet = settings.model_copy(
        update={"flows": settings.flows.model_copy(update={"heartbeat_frequency": None})}
    )
    with SettingsContext(profile=current.profile, settings=quiet):
        yield


def _refresh_prefect_settings() -> None:
    """Prefect read its settings from the environment when the flow's module imported it: read them again."""
    import prefect.context

    prefect.context.refresh_global_settings_context()


def _record_events() -> None:
    """Keep Prefect's events (task-run states among them) in memory instead of streaming them to a server."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    # Prefect's in-memory events client: emit_event only builds events for its known clients, and this one
    # keeps them in the process, which is all a run under wp needs (no websocket to a server)
    AssertingEventsClient.reset()
    EventsWorker.set_client_override(AssertingEventsClient)


def task_run_states() -> list[tuple[str, str, int]]:
    """(task run name, final state name, attempts) of every task run, from the events Prefect emitted."""
    from prefect.events.clients import AssertingEventsClient

    runs: dict[str, list[Any]] = {}
    for client in AssertingEventsClient.all:
        for event in getattr(client, "events", []):
            if not str(event.event).startswith("prefect.task-run."):
                continue
            resource = event.resource
            task_id = resource.get("prefect.resource.id", "")
            name = resource.get("prefect.resource.name", task_id)
            entry = runs.setdefault(task_id, [name, "", 0])
            entry[1] = str(event.event).rpartition(".")[2]
            state_type = ((event.payload or {}).get("validated_state") or {}).get("type")
            if state_type == "RUNNING":
                entry[2] += 1
    return [(name, state, attempts) for name, state, attempts in runs.values()]
