"""Routes of work pools and their queues: imperative CRUD, statuses and the default pool.

Owns `/work_pools`, `/work_pools/{pool}/queues` and `/default_work_pool`. Must never implement a domain
rule (default queue, priority shifting, name checks): the store and the model do; this module only
translates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from reconciler.api.dependencies import StoreDep, now_or_clock
from reconciler.api.masking import SecretPatterns, restored_fields, shown_pool
from reconciler.api.object_shapes import (
    DefaultPool,
    Status,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueueCreate,
    WorkQueueUpdate,
    set_fields,
)
from reconciler.api.wake import WorkSignalDep
from reconciler.model import WorkPool, WorkQueue

router = APIRouter(tags=["work pools"])


# Answers carrying a pool's template seal its secret defaults (reconciler.api.masking).
@router.post("/work_pools", response_model=WorkPool, status_code=201)
def create_work_pool(body: WorkPoolCreate, store: StoreDep, patterns: SecretPatterns) -> dict[str, Any]:
    pool = WorkPool.model_validate(body.model_dump(exclude={"owner", "overwrite"}))
    return shown_pool(store.create_work_pool(pool, owner=body.owner, overwrite=body.overwrite), patterns)


@router.get("/work_pools", response_model=list[WorkPool])
def list_work_pools(store: StoreDep, patterns: SecretPatterns) -> list[dict[str, Any]]:
    return [shown_pool(p, patterns) for p in store.list_work_pools()]


@router.get("/work_pools/{name}", response_model=WorkPool)
def get_work_pool(name: str, store: StoreDep, patterns: SecretPatterns) -> dict[str, Any]:
    return shown_pool(store.get_work_pool(name), patterns)


@router.patch("/work_pools/{name}", response_model=WorkPool)
def update_work_pool(
    name: str, body: WorkPoolUpdate, store: StoreDep, patterns: SecretPatterns, signal: WorkSignalDep
) -> dict[str, Any]:
    fields = set_fields(body)
    if "base_job_template" in fields:
        fields = restored_fields(fields, store.get_work_pool(name))
    pool = store.update_work_pool(name, **fields)
    signal.notify(name)  # resumed, or a limit raised: runs may be claimable now
    return shown_pool(pool, patterns)


@router.delete("/work_pools/{name}", status_code=204)
def delete_work_pool(name: str, store: StoreDep, cascade: bool = False) -> None:
    """Refused (409) while deployments use the pool, unless `cascade=true` deletes them too."""
    store.delete_work_pool(name, cascade=cascade)


@router.get("/work_pools/{name}/status", response_model=Status)
def work_pool_status(name: str, store: StoreDep, now: datetime | None = None) -> Status:
    return Status(status=store.work_pool_status(name, now_or_clock(now)))


@router.get("/default_work_pool", response_model=DefaultPool)
def get_default_work_pool(store: StoreDep) -> DefaultPool:
    return DefaultPool(name=store.get_default_work_pool())


@router.put("/default_work_pool", response_model=DefaultPool)
def set_default_work_pool(body: DefaultPool, store: StoreDep) -> DefaultPool:
    store.set_default_work_pool(body.name)
    return DefaultPool(name=store.get_default_work_pool())


@router.post("/work_pools/{pool}/queues", response_model=WorkQueue, status_code=201)
def create_work_queue(pool: str, body: WorkQueueCreate, store: StoreDep) -> WorkQueue:
    queue = WorkQueue.model_validate({"work_pool": pool, **body.model_dump(exclude={"owner"})})
    return store.create_work_queue(queue, owner=body.owner)


@router.get("/work_pools/{pool}/queues", response_model=list[WorkQueue])
def list_work_queues(pool: str, store: StoreDep) -> list[WorkQueue]:
    return store.list_work_queues(pool)


@router.get("/work_pools/{pool}/queues/{name}", response_model=WorkQueue)
def get_work_queue(pool: str, name: str, store: StoreDep) -> WorkQueue:
    return store.get_work_queue(pool, name)


@router.patch("/work_pools/{pool}/queues/{name}", response_model=WorkQueue)
def update_work_queue(
    pool: str, name: str, body: WorkQueueUpdate, store: StoreDep, signal: WorkSignalDep
) -> WorkQueue:
    queue = store.update_work_queue(pool, name, **set_fields(body))
    signal.notify(pool)
    return queue


@router.delete("/work_pools/{pool}/queues/{name}", status_code=204)
def delete_work_queue(pool: str, name: str, store: StoreDep, cascade: bool = False) -> None:
    """Refused (409) while deployments use the queue, unless `cascade=true` deletes them too."""
    store.delete_work_queue(pool, name, cascade=cascade)


@router.get("/work_pools/{pool}/queues/{name}/status", response_model=Status)
def work_queue_status(pool: str, name: str, store: StoreDep, now: datetime | None = None) -> Status:
    return Status(status=store.work_queue_status(pool, name, now_or_clock(now)))
