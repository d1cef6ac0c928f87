"""A worker picks its executor by pool type, and says plainly what it cannot run."""

from __future__ import annotations

import pytest

from reconciler.runtime.executor_choice import WorkerSetupError, load_executor
from reconciler.runtime.executors.process import ProcessExecutor


def test_process_pools_get_the_process_executor() -> None:
    assert isinstance(load_executor("process"), ProcessExecutor)


def test_kubernetes_pools_get_the_kubernetes_executor() -> None:
    from reconciler.runtime.executors.kubernetes import KubernetesExecutor

    assert isinstance(load_executor("kubernetes"), KubernetesExecutor)


def test_an_unknown_pool_type_lists_what_workers_run() -> None:
    with pytest.raises(
        WorkerSetupError, match=r"no executor for work pool type 'ecs'; wp workers run: .*process"
    ):
        load_executor("ecs")
