"""A worker picks its executor by pool type, and says plainly what it cannot run."""

from __future__ import annotations

import pytest

from reconciler.runtime.executors.process import ProcessExecutor
from reconciler.runtime.worker import WorkerSetupError, load_executor


def test_process_pools_get_the_process_executor() -> None:
    assert isinstance(load_executor("process"), ProcessExecutor)


@pytest.mark.parametrize("pool_type", ["kubernetes"])
def test_pool_types_without_an_executor_yet_are_refused_at_start(pool_type: str) -> None:
    with pytest.raises(WorkerSetupError, match=f"cannot run {pool_type} pools yet"):
        load_executor(pool_type)


def test_an_unknown_pool_type_lists_what_workers_run() -> None:
    with pytest.raises(
        WorkerSetupError, match=r"no executor for work pool type 'ecs'; wp workers run: .*process"
    ):
        load_executor("ecs")
