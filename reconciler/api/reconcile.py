"""Routes of reconciliation: the snapshot, apply, the lease lock and the apply history.

Owns `GET /snapshot` and `POST /apply` (one request each, whatever the number of objects, so a plan and an
apply cost a constant number of round trips), the known no-ops of `wp plan`'s shortcut (`/plan-inputs/{key}`),
the lock endpoints, `GET /history` and `GET /secret_patterns`. Must never diff or plan: the client sends the
finished plan, the store checks staleness and writes it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from reconciler.api.dependencies import StoreDep
from reconciler.api.masking import SecretPatterns, restored_plan, shown_snapshot
from reconciler.api.metrics import server_metrics
from reconciler.api.shapes import (
    ApplyRecordShape,
    ApplyRequest,
    CurrentLock,
    LockRequest,
    LockShape,
    NoopRequest,
    NoopShape,
    SnapshotShape,
    lock_to_shape,
    plan_from_shape,
    record_from_shape,
    record_to_shape,
    snapshot_to_shape,
)
from reconciler.errors import LockHeldError, StalePlanError, ValidationError
from reconciler.model import Key

router = APIRouter(tags=["reconcile"])


@router.get("/snapshot", response_model=SnapshotShape)
def get_snapshot(
    store: StoreDep,
    patterns: SecretPatterns,
    only: Annotated[
        list[str], Query(description="With keyed=true: the addresses to read (KIND.NAME), not everything")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
    keyed: Annotated[bool, Query(description="Read only the objects named by `only`")] = False,
) -> SnapshotShape:
    """Every declared object with owner and fingerprint, in one request. Secret values are masked as
    `(sensitive sha256:<digest>)` (`sealed: true`); `wp plan` puts its config's clear values back where the
    digests match, so a changed secret is still a change."""
    # secrets sealed: a client that plans puts the clear values of its config back where they match
    if not keyed:
        return shown_snapshot(snapshot_to_shape(store.snapshot()), patterns)
    try:
        keys = [Key.parse(address) for address in only]
    except ValueError as exc:
        raise ValidationError(str(exc), path=["only"]) from None
    return shown_snapshot(snapshot_to_shape(store.snapshot(only=keys)), patterns)


@router.get("/secret_patterns", response_model=dict[str, list[str]])
def get_secret_patterns(patterns: SecretPatterns) -> dict[str, list[str]]:
    """The key patterns whose values every answer masks: the defaults and those applied projects added."""
    return {"patterns": list(patterns)}


@router.post("/apply", response_model=ApplyRecordShape)
def post_apply(body: ApplyRequest, store: StoreDep, request: Request) -> ApplyRecordShape:
    applies = server_metrics(request).applies
    try:
        plan = restored_plan(store, plan_from_shape(body.plan))
        record = store.apply(plan, record_from_shape(body.record), lock_id=body.lock_id)
    except StalePlanError:
        applies.labels("stale").inc()
        raise
    except LockHeldError:
        applies.labels("locked").inc()
        raise
    except Exception:
        applies.labels("failed").inc()
        raise
    applies.labels("success").inc()
    return record_to_shape(record)


@router.get("/plan-inputs/{key}", response_model=NoopShape)
def get_plan_inputs(key: str, store: StoreDep) -> NoopShape:
    """The no-op shortcut of `wp plan`: the store revision now and the known no-op under `key`, in one read."""
    state = store.read_noop(key)
    return NoopShape(
        revision=state.revision,
        record=dict(state.record) if state.record is not None else None,
        record_revision=state.record_revision,
    )


@router.put("/plan-inputs/{key}", status_code=204)
def put_plan_inputs(key: str, body: NoopRequest, store: StoreDep) -> None:
    if len(key) > 64:
        raise ValidationError("a plan-inputs key has at most 64 characters", path=["key"])
    store.save_noop(key, body.record, body.revision)


@router.post("/lock", response_model=LockShape, status_code=201)
def post_lock(body: LockRequest, store: StoreDep) -> LockShape:
    lock = store.acquire_lock(
        body.holder, body.operation, timeout=body.timeout, ttl=body.ttl, process=body.holder_process()
    )
    return lock_to_shape(lock)


@router.get("/lock", response_model=CurrentLock)
def get_lock(store: StoreDep) -> CurrentLock:
    lock = store.current_lock()
    return CurrentLock(lock=lock_to_shape(lock) if lock is not None else None)


@router.delete("/lock/{lock_id}", status_code=204)
def delete_lock(lock_id: str, store: StoreDep) -> None:
    store.release_lock(lock_id)


@router.post("/lock/{lock_id}/force-unlock", response_model=LockShape)
def post_force_unlock(lock_id: str, store: StoreDep) -> LockShape:
    return lock_to_shape(store.force_unlock(lock_id))


@router.get("/history", response_model=list[ApplyRecordShape])
def get_history(
    store: StoreDep,
    project: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[ApplyRecordShape]:
    return [record_to_shape(r) for r in store.list_history(project, limit)]
