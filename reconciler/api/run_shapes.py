"""HTTP shapes of the runtime API: what a worker sends (claim, heartbeat, state change, infrastructure id) and
what a scheduler sends (scheduled runs to delete, late runs, dead-worker recovery), and the counts answered.

Owns those request bodies and their bounds; times without an offset are taken as UTC (`UtcDatetime`). Must
never hold routes or rules: the store decides what a claim or a state change does.
"""

from __future__ import annotations

from pydantic import Field

from reconciler.api.shapes import Shape, UtcDatetime
from reconciler.states import RunState


class ClaimRequest(Shape):
    worker: str = Field(min_length=1)
    limit: int = Field(ge=0, le=10_000)
    scheduled_before: UtcDatetime
    now: UtcDatetime | None = None
    work_queues: list[str] = Field(default_factory=list)


class HeartbeatRequest(Shape):
    work_pool: str = Field(min_length=1)
    name: str = Field(min_length=1)
    interval: float = Field(default=30.0, gt=0, le=86400)
    now: UtcDatetime | None = None
    host: str | None = Field(default=None, max_length=300)
    pid: int | None = Field(default=None, ge=0)


class StateRequest(Shape):
    state: RunState
    message: str | None = None
    expected: list[RunState] = Field(default_factory=list)
    now: UtcDatetime | None = None
    actor: str | None = Field(default=None, max_length=300)  # recorded in the run's state history


class InfrastructureRequest(Shape):
    infrastructure_id: str = Field(min_length=1, max_length=300)


class Count(Shape):
    count: int


class DeleteScheduledRequest(Shape):
    deployment: str = Field(min_length=1, description="flow/name")
    slugs: list[str]
    after: UtcDatetime


class MarkLateRequest(Shape):
    now: UtcDatetime | None = None
    threshold_seconds: float = Field(default=15.0, ge=0)


class RecoverRequest(Shape):
    now: UtcDatetime | None = None
    heard_since: UtcDatetime | None = None  # heartbeats due before it are not counted as missed
