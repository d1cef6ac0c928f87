"""Routes of the scheduler services: the store calls a scheduler makes, so one can run against a wp server.

Owns `/scheduled_runs` (insert, delete, expected times), `/flow_runs/mark_late`, `/workers/recover` and
`/work_pools/{pool}/run_counts`. Must never compute a schedule: the scheduler does, the store writes.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from reconciler.api.dependencies import StoreDep, now_or_clock
from reconciler.api.masking import restored_run
from reconciler.api.run_shapes import Count, DeleteScheduledRequest, MarkLateRequest, RecoverRequest
from reconciler.api.shapes import as_utc
from reconciler.model import FlowRun

router = APIRouter(tags=["scheduler"])


@router.post("/scheduled_runs", response_model=Count)
def insert_scheduled_runs(runs: list[FlowRun], store: StoreDep) -> Count:
    # a scheduler reading through the API copied masked parameters: the store's clear values go back in
    return Count(count=store.insert_scheduled_runs([restored_run(store, r) for r in runs]))


@router.post("/scheduled_runs/delete", response_model=Count)
def delete_scheduled_runs(body: DeleteScheduledRequest, store: StoreDep) -> Count:
    return Count(count=store.delete_scheduled_runs(body.deployment, body.slugs, body.after))


@router.get("/scheduled_runs/times", response_model=dict[str, list[datetime]])
def scheduled_run_times(deployment: str, after: datetime, store: StoreDep) -> dict[str, list[datetime]]:
    times = store.scheduled_run_times(deployment, after=as_utc(after))
    return {slug: sorted(values) for slug, values in times.items()}


@router.post("/flow_runs/mark_late", response_model=Count)
def mark_late_runs(body: MarkLateRequest, store: StoreDep) -> Count:
    return Count(count=store.mark_late_runs(now_or_clock(body.now), body.threshold_seconds))


@router.post("/workers/recover", response_model=dict[str, int])
def recover_dead_workers(body: RecoverRequest, store: StoreDep) -> dict[str, int]:
    return store.recover_dead_workers(now_or_clock(body.now), heard_since=body.heard_since)


@router.get("/work_pools/{pool}/run_counts", response_model=dict[str, int])
def count_runs_by_state(pool: str, store: StoreDep, work_queue: str | None = None) -> dict[str, int]:
    return store.count_runs_by_state(pool, work_queue)
