"""Routes of the runtime: flow runs, their states and logs, claims, worker heartbeats.

Owns `/flow_runs`, `/flow_runs/{id}/inputs`, `/flow_runs/{id}/state`, `/flow_runs/{id}/history`,
`/flow_runs/{id}/infrastructure`, `/flow_runs/{id}/logs`,
`/work_pools/{pool}/claim`,
`/workers/heartbeat` and `/work_pools/{pool}/workers`. Must never decide a state transition or a claim: the
store does, atomically, through `states.transition()`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reconciler.api.dependencies import StoreDep, now_or_clock
from reconciler.api.masking import SecretPatterns, restored_run, run_masks, shown_run
from reconciler.api.metrics import server_metrics
from reconciler.api.run_shapes import ClaimRequest, HeartbeatRequest, InfrastructureRequest, StateRequest
from reconciler.api.shapes import as_utc
from reconciler.api.wake import WorkSignalDep
from reconciler.errors import NotFoundError, ValidationError
from reconciler.model import Deployment, FlowRun, LogLine, RunStateChange, Worker, WorkPool
from reconciler.parameters import check_run_parameters
from reconciler.secret_values import mask_text
from reconciler.states import RunState

router = APIRouter(tags=["runtime"])


@router.post("/flow_runs", response_model=FlowRun, status_code=201)
def create_flow_run(
    body: FlowRun, store: StoreDep, patterns: SecretPatterns, signal: WorkSignalDep
) -> dict[str, Any]:
    flow, _, name = body.deployment.partition("/")
    with contextlib.suppress(NotFoundError):  # the store refuses a run of a missing deployment itself
        problems = check_run_parameters(store.get_deployment(flow, name).parameter_schema, body.parameters)
        if problems:
            raise ValidationError("; ".join(problems), path=("parameters",))
    run = store.create_flow_run(restored_run(store, _times_in_utc(body)))
    signal.notify(run.work_pool)
    return shown_run(run, patterns)


def _times_in_utc(run: FlowRun) -> FlowRun:
    """A run posted with offset-less times gets them as UTC: the store never compares naive and aware."""
    fields = ("expected_start_time", "start_time", "end_time", "created")
    naive = {f: as_utc(v) for f in fields if (v := getattr(run, f)) is not None and v.tzinfo is None}
    return run.model_copy(update=naive) if naive else run


@router.get("/flow_runs", response_model=list[FlowRun])
def list_flow_runs(
    store: StoreDep,
    patterns: SecretPatterns,
    state: Annotated[list[RunState], Query()] = [],  # noqa: B006  # FastAPI copies defaults per request
    work_pool: str | None = None,
    work_queue: str | None = None,
    deployment: str | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    match: Annotated[str | None, Query(description="A run's name or a prefix of its id.")] = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Runs, oldest expected start first. Secret parameters and job variables are masked as
    `(sensitive sha256:<digest>)`; only the worker holding a run reads them, from `/flow_runs/{id}/inputs`."""
    runs = store.list_flow_runs(
        states=[s.value for s in state],
        work_pool=work_pool,
        work_queue=work_queue,
        deployment=deployment,
        before=as_utc(before) if before is not None else None,
        limit=limit,
        match=match,
        newest_first=newest_first,
    )
    return [shown_run(r, patterns) for r in runs]


# Answers seal secret parameters and job variables (reconciler.api.masking), all but the next route's.
@router.get("/flow_runs/{run_id}", response_model=FlowRun)
def get_flow_run(run_id: str, store: StoreDep, patterns: SecretPatterns) -> dict[str, Any]:
    """One run, secrets masked as `(sensitive sha256:<digest>)`."""
    return shown_run(store.get_flow_run(run_id), patterns)


class RunInputsShape(BaseModel):
    run: FlowRun
    deployment: Deployment
    work_pool: WorkPool
    secret_patterns: list[str]


@router.get("/flow_runs/{run_id}/inputs", response_model=RunInputsShape)
def get_run_inputs(
    run_id: str,
    store: StoreDep,
    worker: Annotated[str, Query(description="The worker that claimed the run.")],
) -> RunInputsShape:
    """What a worker renders and starts a run from, secret values in clear: the one answer that carries them.
    Only for the worker that claimed the run, while it is PENDING, RUNNING or CANCELLING (409 otherwise)."""
    inputs = store.run_inputs(run_id, worker)
    return RunInputsShape(
        run=inputs.run,
        deployment=inputs.deployment,
        work_pool=inputs.work_pool,
        secret_patterns=list(inputs.secret_patterns),
    )


@router.post("/flow_runs/{run_id}/state", response_model=FlowRun)
def set_run_state(
    run_id: str, body: StateRequest, store: StoreDep, patterns: SecretPatterns, signal: WorkSignalDep
) -> dict[str, Any]:
    # the worker masked the run's secrets in the message already; the server masks the values it knows again
    message = body.message
    if message:
        message = mask_text(message, run_masks(store, run_id))
    run = store.set_run_state(
        run_id,
        body.state.value,
        message=message,
        expected=[s.value for s in body.expected],
        now=now_or_clock(body.now),
        actor=body.actor,
    )
    if run.state == RunState.SCHEDULED or RunState(run.state).is_final:
        signal.notify(run.work_pool)  # claimable again, or a concurrency slot freed
    return shown_run(run, patterns)


@router.get("/flow_runs/{run_id}/history", response_model=list[RunStateChange])
def read_run_history(run_id: str, store: StoreDep) -> list[RunStateChange]:
    """The run's state changes, oldest first: from, to, when, why and by whom."""
    return store.read_run_history(run_id)


@router.put("/flow_runs/{run_id}/infrastructure", response_model=FlowRun)
def set_run_infrastructure(
    run_id: str, body: InfrastructureRequest, store: StoreDep, patterns: SecretPatterns
) -> dict[str, Any]:
    """What runs the flow run (a pid, a container id, a job name), as its worker reports it."""
    return shown_run(store.set_run_infrastructure(run_id, body.infrastructure_id), patterns)


@router.post("/flow_runs/{run_id}/logs", status_code=204)
def append_logs(run_id: str, lines: list[LogLine], store: StoreDep) -> None:
    """Store a run's log lines; the run's secret values (6 characters or more) in them are masked."""
    for i, line in enumerate(lines):
        if line.run_id != run_id:
            raise ValidationError(
                f"log line {i} belongs to run {line.run_id!r}, not {run_id!r}; "
                "post each run's lines to its own URL",
                path=(i, "run_id"),
            )
    masks = run_masks(store, run_id)
    if masks:  # the worker masked them already; the server masks the secret values it knows again
        lines = [line.model_copy(update={"message": mask_text(line.message, masks)}) for line in lines]
    store.append_logs(lines)


@router.get("/flow_runs/{run_id}/logs", response_model=list[LogLine])
def read_logs(
    run_id: str,
    store: StoreDep,
    after: int = -1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    prefix: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only stdout lines that start with this text."),
    ] = None,
) -> list[LogLine]:
    return store.read_logs(run_id, after_seq=after, limit=limit, prefix=prefix)


@router.post("/work_pools/{pool}/claim", response_model=list[FlowRun])
def claim_runs(
    pool: str, body: ClaimRequest, store: StoreDep, patterns: SecretPatterns, request: Request
) -> Response:
    """A worker's poll. Answered as JSON made here from the store's runs (the OpenAPI schema still says
    `list[FlowRun]`): FastAPI would validate the answer against that model again, in a second trip through its
    thread pool, for runs the store has just validated."""
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
    # masked too: the worker reads a run's inputs when it starts it
    return JSONResponse([shown_run(r, patterns) for r in claimed])


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
