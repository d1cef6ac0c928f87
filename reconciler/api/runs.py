"""Routes of the runtime: flow runs, their states and logs, claims, worker heartbeats.

Owns `/flow_runs`, `/flow_runs/{id}/state`, `/flow_runs/{id}/history`, `/flow_runs/{id}/infrastructure`, `/flow_runs/{id}/logs`,
`/work_pools/{pool}/claim`,
`/workers/heartbeat` and `/work_pools/{pool}/workers`. Must never decide a state transition or a claim: the
store does, atomically, through `states.transition()`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from reconciler.api.dependencies import StoreDep, now_or_clock
from reconciler.api.metrics import server_metrics
from reconciler.api.shapes import (
    ClaimRequest,
    HeartbeatRequest,
    InfrastructureRequest,
    StateRequest,
    as_utc,
)
from reconciler.api.wake import WorkSignalDep
from reconciler.errors import NotFoundError, ValidationError
from reconciler.model import FlowRun, LogLine, RunStateChange, Worker
from reconciler.parameters import check_run_parameters
from reconciler.states import RunState

router = APIRouter(tags=["runtime"])


@router.post("/flow_runs", response_model=FlowRun, status_code=201)
def create_flow_run(body: FlowRun, store: StoreDep, signal: WorkSignalDep) -> FlowRun:
    flow, _, name = body.deployment.partition("/")
    with contextlib.suppress(NotFoundError):  # the store refuses a run of a missing deployment itself
        problems = check_run_parameters(store.get_deployment(flow, name).parameter_schema, body.parameters)
        if problems:
            raise ValidationError("; ".join(problems), path=("parameters",))
    run = store.create_flow_run(_times_in_utc(body))
    signal.notify(run.work_pool)
    return run


def _times_in_utc(run: FlowRun) -> FlowRun:
    """A run posted with offset-less times gets them as UTC: the store never compares naive and aware."""
    fields = ("expected_start_time", "start_time", "end_time", "created")
    naive = {f: as_utc(v) for f in fields if (v := getattr(run, f)) is not None and v.tzinfo is None}
    return run.model_copy(update=naive) if naive else run


@router.get("/flow_runs", response_model=list[FlowRun])
def list_flow_runs(
    store: StoreDep,
    state: Annotated[list[RunState], Query()] = [],  # noqa: B006  # FastAPI copies defaults per request
    work_pool: str | None = None,
    work_queue: str | None = None,
    deployment: str | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    match: Annotated[str | None, Query(description="A run's name or a prefix of its id.")] = None,
    newest_first: bool = False,
) -> list[FlowRun]:
    return store.list_flow_runs(
        states=[s.value for s in state],
        work_pool=work_pool,
        work_queue=work_queue,
        deployment=deployment,
        before=as_utc(before) if before is not None else None,
        limit=limit,
        match=match,
        newest_first=newest_first,
    )


@router.get("/flow_runs/{run_id}", response_model=FlowRun)
def get_flow_run(run_id: str, store: StoreDep) -> FlowRun:
    return store.get_flow_run(run_id)


@router.post("/flow_runs/{run_id}/state", response_model=FlowRun)
def set_run_state(run_id: str, body: StateRequest, store: StoreDep, signal: WorkSignalDep) -> FlowRun:
    run = store.set_run_state(
        run_id,
        body.state.value,
        message=body.message,
        expected=[s.value for s in body.expected],
        now=now_or_clock(body.now),
        actor=body.actor,
    )
    if run.state == RunState.SCHEDULED or RunState(run.state).is_final:
        signal.notify(run.work_pool)  # claimable again, or a concurrency slot freed
    return run


@router.get("/flow_runs/{run_id}/history", response_model=list[RunStateChange])
def read_run_history(run_id: str, store: StoreDep) -> list[RunStateChange]:
    """The run's state changes, oldest first: from, to, when, why and by whom."""
    return store.read_run_history(run_id)


@router.put("/flow_runs/{run_id}/infrastructure", response_model=FlowRun)
def set_run_infrastructure(run_id: str, body: InfrastructureRequest, store: StoreDep) -> FlowRun:
    """What runs the flow run (a pid, a container id, a job name), as its worker reports it."""
    return store.set_run_infrastructure(run_id, body.infrastructure_id)


@router.post("/flow_runs/{run_id}/logs", status_code=204)
def append_logs(run_id: str, lines: list[LogLine], store: StoreDep) -> None:
    for i, line in enumerate(lines):
        if line.run_id != run_id:
            raise ValidationError(
                f"log line {i} belongs to run {line.run_id!r}, not {run_id!r}; "
                "post each run's lines to its own URL",
                path=(i, "run_id"),
            )
    store.append_logs(lines)


@router.get("/flow_runs/{run_id}/logs", response_model=list[LogLine])
def read_logs(
    run_id: str,
    store: StoreDep,
    after: int = -1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[LogLine]:
    return store.read_logs(run_id, after_seq=after, limit=limit)


@router.post("/work_pools/{pool}/claim", response_model=list[FlowRun])
def claim_runs(pool: str, body: ClaimRequest, store: StoreDep, request: Request) -> list[FlowRun]:
    now = now_or_clock(body.now)
    claimed = store.claim_runs(
        pool,
        body.worker,
        limit=body.limit,
        scheduled_before=body.scheduled_before,
        now=now,
        work_queues=body.work_queues,
    )
    server_metrics(request).observe_claims(claimed, now)
    return claimed


@router.post("/workers/heartbeat", response_model=Worker)
def heartbeat_worker(body: HeartbeatRequest, store: StoreDep) -> Worker:
    return store.heartbeat_worker(
        body.work_pool,
        body.name,
        interval=body.interval,
        now=now_or_clock(body.now),
        host=body.host,
        pid=body.pid,
    )


@router.get("/work_pools/{pool}/workers", response_model=list[Worker])
def list_workers(pool: str, store: StoreDep, now: datetime | None = None) -> list[Worker]:
    return store.list_workers(pool, now_or_clock(now))
