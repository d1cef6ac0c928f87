"""What runs inside the infrastructure: `python -m reconciler.runtime.entry`, the default command of every
job.

Owns the flow-run side of a run: read the run's spec from the environment, run the pull steps, load the
entrypoint (`path/file.py:function` relative to the working directory after the pull steps, or
`package.module:function`), call it with the run's parameters, and report RUNNING, then COMPLETED or FAILED
(with the error; the traceback goes to stderr, which is shipped as run logs).

How it reports (the choice and why): when the worker gives it a pipe (`WP_REPORT_FD`), it writes one JSON
object per state change on that pipe and plain output on stdout/stderr, and the worker forwards both to the
store. So the process imports only the standard library (it starts in tens of milliseconds and stays small),
opens no database connection per run (SQLite writers would contend), and behaves the same on every store.
In a container or a pod (`WP_REPORT_STREAM=stdout`) the worker cannot share a pipe with it, so it writes each
state as one marked line on stdout (`STATE_MARKER` + JSON) and the worker, which follows the container's
output, tells reports from output: the process needs no route to the server and holds no credentials. Only
without either (a hand-made command) does it open the store named by the environment and report directly.

Runs on Python 3.8 and later (the container runner ships it into images wp is not installed in): keep the
syntax and the standard library calls of the reporting and loading paths to what 3.8 has.

Must never import pydantic, sqlalchemy, typer or the store unless it reports directly.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

from reconciler.runtime import container_standby, prefect_flows, prefect_lean, prefect_warm

# Every flow-run process pays for what this module imports, before the flow's own code: typing, dataclasses,
# inspect, traceback and the pull steps (subprocess) were a quarter of a plain run's memory. Names for the type
# checker only (mypy reads any `TYPE_CHECKING` as true); the rest is imported where it is needed.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Protocol, TextIO

ENV_RUN_ID = "WP_FLOW_RUN_ID"
ENV_ENTRYPOINT = "WP_ENTRYPOINT"
ENV_PARAMETERS = "WP_PARAMETERS"
ENV_PULL_STEPS = "WP_PULL_STEPS"
ENV_REPORT_FD = "WP_REPORT_FD"
ENV_REPORT_STREAM = "WP_REPORT_STREAM"  # "stdout": states as marked lines on stdout
# Starts a state line on stdout; the record separator keeps ordinary output from ever looking like one.
STATE_MARKER = "\x1ewp-state "


class EntrypointError(Exception):
    """The entrypoint cannot be found or loaded; the message says what to fix."""


class EntrypointFileMissing(EntrypointError):
    """The entrypoint's file is not in the working directory; `where_code_is` says where it was expected."""

    def __init__(self, target: str, cwd: Path) -> None:
        super().__init__(f"entrypoint file {target!r} not found in {cwd}")
        self.target = target
        self.cwd = cwd


class RunSpec:
    """What the worker asks this process to run (a plain class: `dataclasses` imports `inspect`)."""

    __slots__ = ("entrypoint", "parameters", "pull_steps", "run_id")

    def __init__(
        self,
        run_id: str,
        entrypoint: str,
        parameters: dict[str, Any] | None = None,
        pull_steps: list[dict[str, Any]] | None = None,
    ) -> None:
        self.run_id = run_id
        self.entrypoint = entrypoint
        self.parameters: dict[str, Any] = parameters or {}
        self.pull_steps: list[dict[str, Any]] = pull_steps or []

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunSpec:
        entrypoint = env.get(ENV_ENTRYPOINT, "").strip()
        if not entrypoint:
            raise EntrypointError(
                f"{ENV_ENTRYPOINT} is not set; the worker passes the deployment's entrypoint in it"
            )
        return cls(
            run_id=env.get(ENV_RUN_ID, ""),
            entrypoint=entrypoint,
            parameters=_json_env(env, ENV_PARAMETERS, {}),
            pull_steps=_json_env(env, ENV_PULL_STEPS, []),
        )


def _json_env(env: Mapping[str, str], name: str, default: Any) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise EntrypointError(f"{name} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------- reporting


if TYPE_CHECKING:

    class Reporter(Protocol):
        def report(self, state: str, message: str | None = None) -> None: ...

        def close(self) -> None: ...


class PipeReporter:
    """JSON lines on a pipe the worker reads: `{"state": "FAILED", "message": "..."}`."""

    def __init__(self, fd: int) -> None:
        self._pipe = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def report(self, state: str, message: str | None = None) -> None:
        # flush output first so the worker has every log line before it learns the state
        sys.stdout.flush()
        sys.stderr.flush()
        self._pipe.write(json.dumps({"state": state, "message": message}) + "\n")
        self._pipe.flush()

    def close(self) -> None:
        self._pipe.close()


class StreamReporter:
    """States as marked lines on stdout, which the worker reads from the container's output stream."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        # "prefect" once the entrypoint is a Prefect flow: the docker executor keeps a standby container for the
        # next run of the same configuration only for those (executors/docker_standby.py)
        self.engine: str | None = None

    def report(self, state: str, message: str | None = None) -> None:
        sys.stderr.flush()
        sys.stdout.flush()
        report: dict[str, Any] = {"state": state, "message": message}
        if self.engine:
            report["engine"] = self.engine
        # a line the flow left unfinished is not ended here: the worker finds the marker anywhere in a line
        self._out.write(STATE_MARKER + json.dumps(report) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class StoreReporter:
    """Reports straight to the store chosen by the environment and tees stdout/stderr into run logs."""

    def __init__(self, run_id: str, env: Mapping[str, str]) -> None:
        from reconciler.store.open import open_store  # heavy: only when the worker gave no pipe

        self._store = open_store(env)
        self._run_id = run_id
        self._seq = 0
        self._pending: list[tuple[str, str]] = []
        sys.stdout = _Tee(sys.stdout, "stdout", self._pending)
        sys.stderr = _Tee(sys.stderr, "stderr", self._pending)

    def report(self, state: str, message: str | None = None) -> None:
        from datetime import UTC, datetime

        self._ship()
        actor = f"flow process (pid {os.getpid()})"
        self._store.set_run_state(self._run_id, state, message=message, now=datetime.now(UTC), actor=actor)

    def _ship(self) -> None:
        from datetime import UTC, datetime

        from reconciler.model import LogLine

        sys.stdout.flush()
        sys.stderr.flush()
        now = datetime.now(UTC)
        lines = []
        for stream, text in self._pending:
            lines.append(
                LogLine(run_id=self._run_id, timestamp=now, stream=stream, message=text, seq=self._seq)
            )
            self._seq += 1
        self._pending.clear()
        if lines:
            self._store.append_logs(lines)

    def close(self) -> None:
        self._ship()


class _Tee:
    """A text stream that writes through and keeps complete lines for shipping."""

    def __init__(self, inner: TextIO, stream: str, sink: list[tuple[str, str]]) -> None:
        self._inner = inner
        self._stream = stream
        self._sink = sink
        self._partial = ""

    def write(self, text: str) -> int:
        self._inner.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self._sink.extend((self._stream, line) for line in lines)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._sink.append((self._stream, self._partial))
            self._partial = ""
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def reporter_from_env(env: Mapping[str, str]) -> Reporter:
    fd = env.get(ENV_REPORT_FD)
    if fd:
        return PipeReporter(int(fd))
    if env.get(ENV_REPORT_STREAM) == "stdout":
        return StreamReporter(sys.stdout)
    return StoreReporter(env.get(ENV_RUN_ID, ""), env)


# ---------------------------------------------------------------------------------------------- loading


def load_entrypoint(entrypoint: str, cwd: Path) -> Callable[..., Any]:
    """`flows/etl.py:etl` (relative to `cwd`), `package.module:function` or `package.module.function`."""
    target, sep, attr = entrypoint.rpartition(":")
    if not sep:
        target, _, attr = entrypoint.rpartition(".")
    if not target or not attr:
        raise EntrypointError(f"entrypoint {entrypoint!r} must look like path/file.py:function")
    if str(cwd) not in sys.path:
        sys.path.insert(0, str(cwd))
    prefect_lean.install()  # before the flow's module imports Prefect
    try:
        module = _load_file(target, cwd) if target.endswith(".py") or "/" in target else _load_module(target)
    except ModuleNotFoundError as exc:
        if prefect_flows.missing_prefect(exc, target) is None:
            raise
        raise EntrypointError(str(prefect_flows.missing_prefect(exc, target))) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(
                n
                for n, v in vars(module).items()
                if isinstance(v, types.FunctionType) and not n.startswith("_")
            )
            raise EntrypointError(
                f"{target} has no function {attr!r}; functions it defines: {', '.join(defined) or 'none'}"
            )
        obj = getattr(obj, part)
    if prefect_flows.is_prefect_flow(obj):  # run by Prefect's engine, with its contexts, loggers and retries
        return prefect_flows.runner_for(obj)
    # Any other decorated function (a wrapper) keeps the plain function in `.fn`.
    function = obj if isinstance(obj, types.FunctionType) else getattr(obj, "fn", obj)
    if not callable(function):
        raise EntrypointError(f"{entrypoint!r} is a {type(function).__name__}, not a function")
    return function


def _load_file(target: str, cwd: Path) -> Any:
    path = (cwd / target).resolve()
    if not path.is_file():
        raise EntrypointFileMissing(target, cwd)
    sys.path.insert(0, str(path.parent))
    name = f"__wp_flow__{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _load_module(target: str) -> Any:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if prefect_flows.missing_prefect(exc, target) is not None:
            raise  # said in one line by load_entrypoint
        raise EntrypointError(f"cannot import module {target!r}: {exc}") from None


def call(function: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
    result = function(**parameters)
    # inspect.isawaitable without importing inspect: a coroutine, or an object whose type defines __await__
    if isinstance(result, types.CoroutineType) or hasattr(type(result), "__await__"):
        import asyncio

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
    return result


# ---------------------------------------------------------------------------------------------- the run


def code_problem(env: Mapping[str, str], exc: Exception) -> str:
    """Why the run's code could not be reached or loaded, naming its deployment, where the code was expected
    and how to put it there (the model of README "Where the code is")."""
    deployment = env.get("WP_DEPLOYMENT")
    message = f"deployment {deployment}: {exc}" if deployment else str(exc)
    if not isinstance(exc, EntrypointFileMissing):
        return message
    in_container = env.get(ENV_REPORT_STREAM) == "stdout"
    if json.loads(env.get(ENV_PULL_STEPS) or "[]"):
        where = " (the working directory after the pull steps)"
        fix = "make the pull steps put the code there, or set the entrypoint relative to it"
    elif in_container:
        where = " (the image's working directory)"
        fix = (
            "the deployment has no pull steps, so its code must be in the image: build it into the image and "
            "set the working directory to it (working_dir on a docker pool, the container's workingDir on a "
            "kubernetes pool), or add a git_clone pull step that fetches it"
        )
    else:
        where = " (the pool's working_dir, else the directory the worker was started in)"
        fix = (
            "start the worker in the project directory, set working_dir to it, or add a git_clone pull step "
            "that fetches the code"
        )
    return f"{message}{where}; {fix}"


def execute(env: Mapping[str, str], reporter: Reporter, err: TextIO) -> str:
    """Run one flow run in this process; return the final state reported."""
    reporter.report("RUNNING")
    try:
        spec = RunSpec.from_env(env)
        if spec.pull_steps:
            _pull(spec.pull_steps, env)
        function = load_entrypoint(spec.entrypoint, Path.cwd())
        if getattr(function, prefect_flows.RUNNER_MARK, False) and isinstance(reporter, StreamReporter):
            reporter.engine = "prefect"
        call(function, spec.parameters)
    except EntrypointError as exc:
        message = code_problem(env, exc)
        print(f"wp: {message}", file=err, flush=True)
        reporter.report("FAILED", message)
        return "FAILED"
    except SystemExit as exc:
        if exc.code in (None, 0):
            reporter.report("COMPLETED")
            return "COMPLETED"
        reporter.report("FAILED", f"the flow called sys.exit({exc.code!r})")
        return "FAILED"
    except BaseException as exc:
        import traceback

        traceback.print_exc(file=err)
        err.flush()
        reporter.report("FAILED", f"{type(exc).__name__}: {exc}")
        return "FAILED"
    reporter.report("COMPLETED")
    return "COMPLETED"


class PullStepFailed(EntrypointError):
    """A pull step failed: the run's code could not be fetched (the message is the step's)."""


def _pull(steps: list[dict[str, Any]], env: Mapping[str, str]) -> None:
    # imported here: the pull steps' subprocess and parsing are for deployments that have some
    from reconciler.runtime.pull_steps import PullStepError, run_pull_steps

    try:
        run_pull_steps(steps, env=env, out=sys.stdout)
    except PullStepError as exc:
        raise PullStepFailed(str(exc)) from None


def main() -> int:
    env = dict(os.environ)
    if not container_standby.take_run(env):  # a standby container that got no run
        return container_standby.NO_RUN
    if prefect_warm.wanted(env, Path.cwd()):  # a Prefect flow: run it in a warm, pre-imported interpreter
        code = prefect_warm.run_warm(env)
        if code is not None:
            return code
    reporter = reporter_from_env(env)
    try:
        state = execute(env, reporter, sys.stderr)
    finally:
        reporter.close()
    code = 0 if state == "COMPLETED" else 1
    if isinstance(reporter, StreamReporter) and reporter.engine == "prefect":
        end_now(code)
    return code


def end_now(code: int) -> None:
    """End a container's process after a Prefect flow's run without the interpreter's teardown: freeing what
    `import prefect` built takes 0.5-2 s of CPU, and the worker ends the run only when the container has. The run
    is over and reported (Prefect's events drained by `prefect_flows.run_flow`); output and log handlers are
    flushed first. Prefect's own exit hooks only stop its service threads."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
