"""The Executor protocol: how a worker starts, watches and stops one run's infrastructure.

Owns the contract between the worker and every kind of infrastructure (process, docker, kubernetes): the job a
worker hands over (`Job`), the handle it gets back (`Infrastructure`), the events a handle yields (output
lines and the states the flow-run process reports), and the environment every job passes to
`reconciler.runtime.entry`.

Must never touch the store: the worker reports states and ships logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.model import Deployment, FlowRun
from reconciler.runtime.entry import ENV_ENTRYPOINT, ENV_PARAMETERS, ENV_PULL_STEPS, ENV_RUN_ID

ENTRY_MODULE = "reconciler.runtime.entry"


class ExecutorError(Exception):
    """The infrastructure could not be started; the message says why."""


@dataclass(frozen=True)
class Job:
    """What a worker asks an executor to start."""

    run: FlowRun
    deployment: Deployment
    configuration: Mapping[str, Any]  # the rendered job configuration
    worker_env: Mapping[str, str] = field(default_factory=dict)  # the worker's own environment
    worker_name: str = ""
    default_working_dir: str | None = None  # where code is found when working_dir is unset


@dataclass(frozen=True)
class Output:
    stream: str  # stdout | stderr
    text: str
    # when the infrastructure recorded the line (a container's log timestamp); lets a worker that re-attaches
    # skip the lines it shipped before. None: the worker's clock.
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StateReport:
    """A state the flow-run process reported (RUNNING, COMPLETED, FAILED)."""

    state: str
    message: str | None = None
    engine: str | None = None  # "prefect": the run's entrypoint was a Prefect flow (container runs say so)


Event = Output | StateReport


class Infrastructure(Protocol):
    """One started job. Every method returns at once; the worker's loop calls them."""

    @property
    def id(self) -> str:
        """pid, container id or job name, shown to users."""
        ...

    def selectables(self) -> Sequence[int]:
        """File descriptors the worker may wait on for events; empty = poll."""
        ...

    def read_events(self) -> list[Event]:
        """Events available now, never blocking."""
        ...

    def exit_code(self) -> int | None:
        """None while running; negative = killed by that signal. Only final once every event is read."""
        ...

    def stop(self, grace: float) -> None:
        """Ask the job to stop; force it after `grace` seconds."""
        ...


class Executor(Protocol):
    type: str

    def start(self, job: Job) -> Infrastructure:
        """Start the job; ExecutorError when that is impossible."""
        ...

    def reattach(self, run: FlowRun, infrastructure_id: str) -> Infrastructure | None:
        """Follow a run's infrastructure started by an earlier life of this worker (same name): its events
        from the start of its output (the worker skips lines it already shipped), its exit code. None when the
        infrastructure is gone or this kind cannot be followed again (the worker then ends the run, or hands
        back one never started). `infrastructure_id` is "" when none was recorded: look by the run's labels."""
        ...


def entry_env(job: Job) -> dict[str, str]:
    """What `reconciler.runtime.entry` reads: the run, its entrypoint, parameters and pull steps."""
    return {
        ENV_RUN_ID: job.run.id,
        ENV_ENTRYPOINT: job.deployment.entrypoint,
        ENV_PARAMETERS: json.dumps(job.run.parameters),
        ENV_PULL_STEPS: json.dumps(list(job.deployment.pull_steps)),
        "WP_FLOW_RUN_NAME": job.run.name,
        "WP_DEPLOYMENT": job.run.deployment,
        "WP_WORK_POOL": job.run.work_pool,
        "WP_WORKER_NAME": job.worker_name,
    }


def configured_env(configuration: Mapping[str, Any]) -> dict[str, str]:
    """The job configuration's `env`, with unset (None) entries removed and other values as text."""
    env = configuration.get("env") or {}
    if isinstance(env, list):  # the Kubernetes form [{name, value}]
        env = {e["name"]: e.get("value") for e in env if isinstance(e, Mapping) and "name" in e}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in env.items() if v is not None}
