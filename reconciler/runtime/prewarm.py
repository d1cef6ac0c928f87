"""Pre-warming: a process worker starts the warm Prefect server (`prefect_warm`) of each flow environment its pool's
deployments run in, before their first run, so that even the first run is forked from a warm interpreter.

Owns which deployments get one, with which environment, and starting them in the background. A deployment gets
one when the pool is a process pool, its job's command is wp's runner under some python (the default command, or
`<python> -m reconciler.runtime.entry`), and `prefect_warm.warm_entrypoint` accepts the run's environment (a file
entrypoint that mentions Prefect, no `pip_install_requirements` step, `WP_PREFECT_WARM` not "0"): the rule a
run applies to itself. The environment is the one the process executor gives a run (the worker's environment and
the job configuration's `env`, rendered by `submission.job_configuration` for a placeholder run of the
deployment), in the run's working directory, so the server's key (python, `PYTHONPATH`, `PREFECT_*`) is the
run's. The key is computed by the flow's own python (`python -m reconciler.runtime.prefect_warm --prewarm`, a
short stdlib-only process): only it knows which Prefect it imports. It starts the server unless one answers (two
workers on one machine share it: the server's lock leaves one) and prints the server's pid once the server has
imported Prefect, so the worker's `Prefect is warm` line means a run would now be forked from a warm interpreter.

A deployment's environment is pre-warmed when the worker first sees the deployment (at its start, then at each
heartbeat, when it reads the pool's deployments), again when its settings change, and again when a run of it is
claimed ahead of its start: so an idle server still expires, and is back before a scheduled run. Never blocks
the worker's loop (the work runs in a daemon thread, one at a time) and never touches the store: the worker
passes the deployments it reads.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.model import Deployment, PoolType, WorkPool
from reconciler.runtime import prefect_warm
from reconciler.runtime.entry import ENV_ENTRYPOINT, ENV_PULL_STEPS
from reconciler.runtime.executors.base import ENTRY_MODULE, configured_env
from reconciler.runtime.executors.process import command_of, working_dir_of
from reconciler.secret_values import SEALED_PREFIX

PREWARM_TIMEOUT = 180.0  # seconds one pre-warm process may take (it waits for the server to import Prefect)
AHEAD_SECONDS = 1.0  # a run claimed at least this long before its start has its environment pre-warmed
AGAIN_SECONDS = 5.0  # runs claimed ahead within this long of each other pre-warm their environment once


@dataclass(frozen=True)
class Environment:
    """A flow environment as the process executor would start a run in it."""

    python: str
    cwd: str
    env: tuple[
        tuple[str, str], ...
    ]  # sorted: the worker's and the job's, without the run's own (its id, ...)

    def argv(self) -> list[str]:
        return [self.python, "-m", "reconciler.runtime.prefect_warm", "--prewarm"]


def environment_of(
    pool: WorkPool, deployment: Deployment, worker_name: str, env: Mapping[str, str], cwd: str
) -> Environment | None:
    """The flow environment a run of `deployment` would fork from a warm server, or None when such a run would
    not use one (see the module docstring)."""
    from reconciler.runtime.submission import job_configuration, preview_run

    if pool.type != PoolType.PROCESS:
        return None
    try:
        configuration = job_configuration(pool, deployment, preview_run(pool, deployment), worker_name, env)
        argv = command_of(configuration.get("command"))
        workdir = working_dir_of(configuration.get("working_dir"), cwd)
    except Exception:  # a template or command error: the run says it when it is submitted
        return None
    if argv[1:] != ["-m", ENTRY_MODULE]:
        return None  # a custom command: which python it runs is not known
    run_env = {**env, **configured_env(configuration), "PYTHONUNBUFFERED": "1"}
    asked = {
        **run_env,
        ENV_ENTRYPOINT: deployment.entrypoint,
        ENV_PULL_STEPS: json.dumps(list(deployment.pull_steps)),
    }
    if not prefect_warm.warm_entrypoint(asked, Path(workdir)):
        return None
    keyed = {k: v for k, v in run_env.items() if k == "PYTHONPATH" or k.startswith("PREFECT_")}
    if any(SEALED_PREFIX in v for v in keyed.values()):
        return None  # a secret the store did not give in clear: the run's key cannot be known here
    return Environment(argv[0], workdir, tuple(sorted(run_env.items())))


class Prewarmer:
    """One worker's pre-warming; `say` prints a line on the worker's output (from the background thread)."""

    def __init__(
        self, pool: WorkPool, worker_name: str, env: Mapping[str, str], cwd: str, say: Callable[[str], None]
    ) -> None:
        self._pool = pool
        self._worker_name = worker_name
        self._env = dict(env)
        self._cwd = cwd
        self._say = say
        self._lock = threading.Lock()  # guards the queue, the thread and `_of`
        self._queue: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        # the background thread's own: each deployment's settings → its environment (rendered once per change)
        self._rendered: dict[str, tuple[str, Environment | None]] = {}
        self._warmed: set[tuple[str, Environment]] = set()  # (deployment, environment) pre-warmed
        self._of: dict[str, Environment] = {}  # deployment "flow/name" → its environment
        self._last: dict[str, float] = {}  # deployment → monotonic time of its last pre-warm before a run

    def see(self, deployments: Sequence[Deployment]) -> None:
        """Pre-warm, in the background, the environments of the pool's `deployments` not pre-warmed yet."""
        listed = list(deployments)
        self._enqueue(lambda: self._see(listed))

    def before_run(self, deployment: str) -> None:
        """A run of `deployment` ("flow/name") starts soon: have its environment's server up (again) by then."""
        now = time.monotonic()
        if now - self._last.get(deployment, -AGAIN_SECONDS) < AGAIN_SECONDS:
            return
        self._last[deployment] = now
        self._enqueue(lambda: self._again(deployment))

    def _enqueue(self, work: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(work)
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._drain, name="wp-prewarm", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                work = self._queue.pop(0)
            try:
                work()
            except Exception as exc:  # never the worker's problem: a run starts its server itself
                self._say(f"pre-warming Prefect failed: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------------------------ the thread's work

    def _see(self, deployments: list[Deployment]) -> None:
        of: dict[str, Environment] = {}
        for deployment in deployments:
            key = f"{deployment.flow}/{deployment.name}"
            settings = json.dumps(
                [deployment.entrypoint, deployment.job_variables, list(deployment.pull_steps)],
                sort_keys=True,
                default=str,
            )
            cached = self._rendered.get(key)
            if cached is None or cached[0] != settings:
                found = environment_of(self._pool, deployment, self._worker_name, self._env, self._cwd)
                cached = self._rendered[key] = (settings, found)
            if cached[1] is not None:
                of[key] = cached[1]
        with self._lock:
            self._of = of
        fresh: dict[Environment, list[str]] = {}
        for key, environment in of.items():
            if (key, environment) not in self._warmed:  # a deployment new to this worker, or changed
                fresh.setdefault(environment, []).append(key)
                self._warmed.add((key, environment))
        for environment, keys in fresh.items():
            self._warm(environment, keys, quiet=False)

    def _again(self, deployment: str) -> None:
        with self._lock:
            environment = self._of.get(deployment)
        if environment is not None:
            self._warm(environment, [deployment], quiet=True)

    def _warm(self, environment: Environment, deployments: list[str], *, quiet: bool) -> None:
        names = ", ".join(deployments)
        try:
            done = subprocess.run(
                environment.argv(),
                cwd=environment.cwd,
                env=dict(environment.env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PREWARM_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._say(f"could not pre-warm Prefect for {names}: {exc}")
            return
        lines = done.stdout.strip().splitlines()
        try:
            pid = json.loads(lines[-1])["server"] if done.returncode == 0 and lines else None
        except (ValueError, KeyError, TypeError):
            pid = None
        if pid is None:
            why = (done.stderr.strip().splitlines() or ["its server did not start"])[-1]
            self._say(f"could not pre-warm Prefect for {names}: {why}")
            return
        if not quiet:
            self._say(f"Prefect is warm for {names}: server pid {pid}")
