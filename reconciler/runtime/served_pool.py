"""The pool a worker is started on, checked before it serves (SPEC §5).

Owns the checks a worker makes at its start: the pool exists, every queue named with --work-queue exists in it,
and the pool's type is the one asked for with --type; each failure is a WorkerSetupError that says how to fix
it. Must never change the store: a worker does not create what it serves.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import NotFoundError
from reconciler.model import DEFAULT_QUEUE, WorkPool
from reconciler.runtime.executor_choice import WorkerSetupError
from reconciler.store.base import Store


def served_pool(
    store: Store, name: str, queues: Sequence[str] = (), pool_type: str | None = None
) -> WorkPool:
    """The pool `name`, once it, its `queues` and its type (`pool_type`, when asked for) are checked."""
    try:
        pool = store.get_work_pool(name)
    except NotFoundError:
        raise WorkerSetupError(
            f"work pool {name!r} does not exist; create it with "
            f"`wp work-pool create {name} --type process` or declare it and `wp apply`"
        ) from None
    _check_queues(store, pool, queues)
    if pool_type and pool_type != pool.type:
        raise WorkerSetupError(
            f"work pool {pool.name!r} is of type {pool.type!r}, not {pool_type!r}; "
            f"start the worker with --type {pool.type} or without --type"
        )
    return pool


def _check_queues(store: Store, pool: WorkPool, queues: Sequence[str]) -> None:
    if not queues:
        return
    existing = [q.name for q in store.list_work_queues(pool.name)]
    missing = [q for q in queues if q not in existing]
    if missing:
        raise WorkerSetupError(
            f"work queue {', '.join(repr(f'{pool.name}/{q}') for q in missing)} does not exist; "
            f"queues of {pool.name!r}: {', '.join(existing) or DEFAULT_QUEUE}. Create it with "
            f"`wp work-queue create {missing[0]} --pool {pool.name}` or fix --work-queue"
        )
