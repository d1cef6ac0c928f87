"""Which executor runs a work pool's type: the executors wp's worker knows, loaded on demand.

Owns `EXECUTORS` (pool type → executor class, imported only when a worker of that type starts, so a process
worker never imports the Docker or Kubernetes clients), `load_executor`, and `WorkerSetupError`, the error of a
worker that cannot start. Must never start a run.
"""

from __future__ import annotations

import importlib

from reconciler.errors import WpError
from reconciler.runtime.executors.base import Executor, ExecutorError

EXECUTORS: dict[str, str] = {
    "process": "reconciler.runtime.executors.process:ProcessExecutor",
    "docker": "reconciler.runtime.executors.docker:DockerExecutor",
    "kubernetes": "reconciler.runtime.executors.kubernetes:KubernetesExecutor",
}


class WorkerSetupError(WpError):
    """The worker cannot start: a missing pool or queue, or a type it cannot run."""


def load_executor(pool_type: str) -> Executor:
    target = EXECUTORS.get(pool_type)
    if target is None:
        known = ", ".join(sorted(EXECUTORS))
        raise WorkerSetupError(f"no executor for work pool type {pool_type!r}; wp workers run: {known}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name != module_name:
            raise WorkerSetupError(f"the {pool_type} executor is not available here: {exc}") from None
        raise WorkerSetupError(
            f"this version of wp cannot run {pool_type} pools yet: its worker executes process pools only; "
            "the pool can still be planned, applied and explained"
        ) from None
    try:
        executor: Executor = getattr(module, class_name)()
    except ExecutorError as exc:  # e.g. no Docker Engine to talk to
        raise WorkerSetupError(f"the {pool_type} executor cannot start: {exc}") from None
    return executor
