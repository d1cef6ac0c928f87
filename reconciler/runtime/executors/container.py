"""The container runner: how a run's flow-run process starts in an image wp is not installed in, and how the
worker reads its states back from the container's output. Shared by the docker and kubernetes executors.

Owns four things:
- the runner's code: the standard-library modules of `RUNNER_MODULES` (entry, pull steps, ...), compressed into
  one environment variable (`WP_RUNNER_CODE`), so nothing is mounted into the container (a pod cannot share
  files with the worker);
- the bootstrap: `python3 -c <BOOTSTRAP>` installs an in-memory importer for those modules and runs
  `reconciler.runtime.entry` (no file is written, so a read-only root filesystem or any user id works);
- the image a configuration that names none runs (`default_image`): the worker's `$WP_DOCKER_IMAGE`, else
  `DEFAULT_IMAGE`, the same for Docker containers and Kubernetes Jobs;
- the container's environment (`runner_env`): the configured env and the run's spec, never the worker's own
  environment nor any API credential, and reporting set to marked lines on stdout;
- `StreamParser`: the incremental reader that splits the container's output into `Output` lines and the
  `StateReport`s marked with `entry.STATE_MARKER`, across partial chunks.

Supports Python 3.8 and later inside the image (the oldest the runner modules are written for).
Must never touch the store, the network or a container engine.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import shlex
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.runtime.entry import ENV_REPORT_STREAM, STATE_MARKER
from reconciler.runtime.executors.base import (
    Event,
    ExecutorError,
    Job,
    Output,
    StateReport,
    configured_env,
    entry_env,
)

# Modules the runner carries, in import order. A module that does not exist in this wp (an optional one) is
# left out; each must import only the standard library and the modules listed before it.
RUNNER_MODULES: tuple[str, ...] = (
    "reconciler.runtime.pull_steps",
    "reconciler.runtime.prefect_api",
    "reconciler.runtime.prefect_lean",
    "reconciler.runtime.prefect_flows",
    "reconciler.runtime.prefect_warm",
    "reconciler.runtime.container_standby",
    "reconciler.runtime.entry",
)
RUNNER_MAIN = "reconciler.runtime.entry"
ENV_RUNNER_CODE = "WP_RUNNER_CODE"
OLDEST_PYTHON = (3, 8)
# What a container must never receive: the run reports through its output, so it needs no route to the store.
CREDENTIAL_ENV = ("WP_API_KEY", "WP_API_URL", "WP_DATABASE_URL")
DEFAULT_IMAGE = "python:3.12-slim"
ENV_DEFAULT_IMAGE = "WP_DOCKER_IMAGE"  # the worker's default image for configurations that set none

# Runs inside the image under any python3 >= 3.8. It maps module name -> [is_package, source] and serves
# those modules from memory ahead of anything installed in the image (a wp there must not shadow the runner).
BOOTSTRAP = """\
import base64, importlib.abc, importlib.util, json, os, sys, zlib
code = json.loads(zlib.decompress(base64.b64decode(os.environ.pop("WP_RUNNER_CODE"))).decode("utf-8"))
class RunnerModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in code:
            return importlib.util.spec_from_loader(name, self, origin="wp-runner", is_package=code[name][0])
        return None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        exec(compile(code[module.__name__][1], "<wp-runner " + module.__name__ + ">", "exec"), module.__dict__)
sys.meta_path.insert(0, RunnerModules())
if os.getpid() == 1:
    import signal
    def terminated(signum, frame):
        # PID 1 ignores SIGTERM it does not handle: end as a process killed by it would, output flushed
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, terminated)
from reconciler.runtime import entry
sys.exit(entry.main())
"""


@functools.cache
def runner_code() -> str:
    """The runner's modules (and the empty packages above them) as base64 of zlib-compressed JSON."""
    modules: dict[str, list[Any]] = {}
    for name in RUNNER_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # an optional module this wp does not have
        parts = name.split(".")
        for i in range(1, len(parts)):
            # the packages' own __init__ would import more than the standard library: the runner's are empty
            modules.setdefault(".".join(parts[:i]), [True, ""])
        modules[name] = [False, Path(spec.origin).read_text(encoding="utf-8")]
    data = zlib.compress(json.dumps(modules).encode("utf-8"), 9)
    return base64.b64encode(data).decode("ascii")


def runner_command(python: str = "python3") -> list[str]:
    """The default command of a container: the image's `python3` runs the runner from `WP_RUNNER_CODE`."""
    return [python, "-c", BOOTSTRAP]


def default_image(worker_env: Mapping[str, str]) -> str:
    """The image of a container whose configuration names none: the worker's `$WP_DOCKER_IMAGE`, else
    `DEFAULT_IMAGE` (any image with a `python3` runs a deployment)."""
    return worker_env.get(ENV_DEFAULT_IMAGE) or DEFAULT_IMAGE


def command_of(command: Any) -> list[str] | None:
    """A configured command as argv (a string is split as a shell would, without needing one in the image);
    None = the runner."""
    if command is None or command == "" or command == []:
        return None
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError as exc:
            raise ExecutorError(f"command {command!r} cannot be split into arguments: {exc}") from None
    if isinstance(command, list) and all(isinstance(c, str) for c in command):
        return list(command)
    raise ExecutorError(f"command must be a string or a list of strings, not {command!r}")


def runner_env(job: Job) -> dict[str, str]:
    """The container's environment: the configured `env`, the run's spec and the runner's code; never the
    worker's environment nor an API credential, even one a template names."""
    env = {k: v for k, v in configured_env(job.configuration).items() if k not in CREDENTIAL_ENV}
    env.update(entry_env(job))
    env.update(
        {
            ENV_REPORT_STREAM: "stdout",
            "PYTHONUNBUFFERED": "1",  # the flow's prints reach the logs as they happen
            "WP_LABELS": json.dumps(job.configuration.get("labels") or {}),
            ENV_RUNNER_CODE: runner_code(),
        }
    )
    return env


def dropped_credentials(configuration: Mapping[str, Any]) -> list[str]:
    """Names of credentials the configured env asked to pass and the container does not get."""
    return sorted(k for k in configured_env(configuration) if k in CREDENTIAL_ENV)


class StreamParser:
    """Reads a container's output as it arrives, in chunks that may split lines anywhere; yields `Output`
    for each complete line and `StateReport` for each state marked with `STATE_MARKER` (found anywhere in a
    line: text before it is output the flow left unterminated)."""

    def __init__(self) -> None:
        self._partial: dict[str, bytes] = {}
        self._stamp: dict[str, datetime | None] = {}

    def feed(self, stream: str, data: bytes, timestamp: datetime | None = None) -> list[Event]:
        buffered = self._partial.get(stream, b"")
        if not buffered:
            self._stamp[stream] = timestamp  # a line is dated by when it began
        lines = (buffered + data).split(b"\n")
        self._partial[stream] = lines.pop()
        events: list[Event] = []
        for raw in lines:
            events.extend(parse_line(stream, raw.decode("utf-8", errors="replace"), self._stamp[stream]))
            self._stamp[stream] = timestamp
        return events

    def close(self) -> list[Event]:
        """The unterminated last lines, once the output is at its end."""
        events: list[Event] = []
        for stream, raw in self._partial.items():
            if raw:
                events.extend(parse_line(stream, raw.decode("utf-8", errors="replace"), self._stamp[stream]))
        self._partial.clear()
        return events


def parse_line(stream: str, line: str, timestamp: datetime | None = None) -> list[Event]:
    """One complete line of output (without its newline) as events."""
    line = line.rstrip("\r")
    at = line.find(STATE_MARKER) if stream == "stdout" else -1
    if at < 0:
        return [Output(stream, line, timestamp)]
    events: list[Event] = [Output(stream, line[:at], timestamp)] if at > 0 else []
    payload = line[at + len(STATE_MARKER) :]
    try:
        data = json.loads(payload)
        engine = data.get("engine")
        events.append(
            StateReport(str(data["state"]), data.get("message"), engine if isinstance(engine, str) else None)
        )
    except (ValueError, KeyError, TypeError):
        events.append(
            Output("stderr", f"wp: unreadable report from the flow-run process: {payload}", timestamp)
        )
    return events
