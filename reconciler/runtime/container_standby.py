"""The inside of a standby container: a container started before its run, that imports Prefect while it waits.

Owns the runner's side of the docker executor's standby containers (`executors/docker_standby.py` owns the
worker's side): when `WP_STANDBY` is set (to the idle seconds), the flow-run process imports what a Prefect flow's
run needs with its output silenced, then waits on its stdin for its run: one JSON line `{"env": {...}}` with the
run's own variables (`base.entry_env`: run id, entrypoint, parameters, pull steps, names), which the worker writes
over the container's attached stdin once it has recorded the container as the run's infrastructure. `entry` then
runs the run exactly as in any container, in this process.

Why stdin: the engine cannot change a started container's environment, and the handoff must need no route from
the container to the worker (a container gets no API credentials, and may have no network at all).

A standby that gets no run ends with `NO_RUN` and one line on stderr saying why: idle for its seconds (its worker
went on without it), or its stdin closed before a whole run arrived (its worker went away mid-handoff). A worker
that follows such a container reports the run CRASHED with that line, never COMPLETED.

Stdlib-only at import time (shipped with the container runner); Prefect is imported by `warm_up` when installed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import sys
from collections.abc import Mapping

from reconciler.runtime.prefect_warm import FIRST_RUN_IMPORTS

ENV_STANDBY = "WP_STANDBY"  # seconds a standby waits for its run; set only on a standby container
NO_RUN = 3  # the exit code of a standby that got no run
WARM_IMPORTS = (
    "prefect",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.events.clients",
    "prefect.events.worker",
    "fastapi.encoders",  # Prefect serializes non-JSON flow parameters with it
    "reconciler.runtime.prefect_flows",
    "reconciler.runtime.prefect_api",
    *FIRST_RUN_IMPORTS,  # what a flow's first run in a process imports lazily: the warm server's list
)


def warm_up() -> None:
    """Import what a Prefect flow's run needs, as a cold run would find it (the lean trims first); nothing printed
    meanwhile reaches the run's logs (the container's output is the run's)."""
    from reconciler.runtime import prefect_lean

    prefect_lean.install()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        for name in WARM_IMPORTS:
            with contextlib.suppress(Exception):  # not installed, or moved in another version: a cold import
                importlib.import_module(name)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def receive_run(env: Mapping[str, str]) -> dict[str, str] | None:
    """Warm up, then wait for the run's variables on stdin; None (said why on stderr) when none came."""
    idle = float(env.get(ENV_STANDBY) or 600)
    warm_up()
    ready, _, _ = select.select([0], [], [], idle)
    if not ready:
        print(f"wp: standby container: no run came in {idle:g} s; ending", file=sys.stderr, flush=True)
        return None
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        line += chunk
    try:
        data = json.loads(line)
        handed = {str(k): str(v) for k, v in data["env"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        print(
            "wp: standby container: its worker went away before handing it a run", file=sys.stderr, flush=True
        )
        return None
    return handed


def take_run(env: dict[str, str]) -> bool:
    """For a standby (`WP_STANDBY` set): wait for the run and put its variables into `env` and the process's
    environment; False when no run came. For any other container: True at once."""
    if not env.get(ENV_STANDBY):
        return True
    handed = receive_run(env)
    if handed is None:
        return False
    os.environ.pop(ENV_STANDBY, None)
    os.environ.update(handed)
    env.pop(ENV_STANDBY, None)
    env.update(handed)
    return True
