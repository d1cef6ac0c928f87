"""Row ↔ model conversion for declared objects, and the status rules computed from rows.

Owns how a WorkPool / WorkQueue / Deployment / Schedule is laid out in its table row (and back), and the
SPEC §1 status rules for workers, pools and queues evaluated against a given `now`.
Must never run queries or open connections: callers hand rows in and take dicts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from reconciler.model import BaseJobTemplate, Deployment, Schedule, WorkPool, WorkQueue

WORKER_OFFLINE_MULTIPLE = 3
QUEUE_READY_WINDOW = timedelta(seconds=60)
DEFAULT_HEARTBEAT_INTERVAL = 30.0

Row = Mapping[Any, Any]  # a SQLAlchemy RowMapping or a plain dict


def managed_columns(owner: str | None, applied: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    return {
        "owner": owner,
        "applied": dict(applied) if applied is not None else None,
        "created": now,
        "updated": now,
    }


def pool_values(pool: WorkPool) -> dict[str, Any]:
    template = pool.base_job_template or BaseJobTemplate()
    return {
        "name": pool.name,
        "type": pool.type,
        "description": pool.description,
        "paused": pool.paused,
        "concurrency_limit": pool.concurrency_limit,
        "base_job_template": template.model_dump(mode="json"),
    }


def pool_values_of(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """`pool_values` of the pool whose attribute form (`model.attributes`) is `attrs`, without the model; None
    when `attrs` is not that full form (then the model is built)."""
    if attrs.keys() != _POOL_FIELDS:
        return None
    template = attrs["base_job_template"]
    return {
        "name": attrs["name"],
        "type": attrs["type"],
        "description": attrs["description"],
        "paused": attrs["paused"],
        "concurrency_limit": attrs["concurrency_limit"],
        "base_job_template": template if template is not None else BaseJobTemplate().model_dump(mode="json"),
    }


_POOL_FIELDS = frozenset(WorkPool.model_fields)


def pool_from_row(row: Row) -> WorkPool:
    return WorkPool(
        name=row["name"],
        type=row["type"],
        description=row["description"],
        paused=row["paused"],
        concurrency_limit=row["concurrency_limit"],
        base_job_template=BaseJobTemplate.model_validate(row["base_job_template"]),
    )


def queue_values(queue: WorkQueue, priority: int) -> dict[str, Any]:
    return {
        "work_pool": queue.work_pool,
        "name": queue.name,
        "priority": priority,
        "concurrency_limit": queue.concurrency_limit,
        "paused": queue.paused,
        "description": queue.description,
    }


def queue_values_of(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """`queue_values(queue, queue.priority or 0)` of the queue whose attribute form is `attrs`; None when
    `attrs` is not that full form."""
    if attrs.keys() != _QUEUE_FIELDS:
        return None
    return {
        "work_pool": attrs["work_pool"],
        "name": attrs["name"],
        "priority": attrs["priority"] or 0,
        "concurrency_limit": attrs["concurrency_limit"],
        "paused": attrs["paused"],
        "description": attrs["description"],
    }


_QUEUE_FIELDS = frozenset(WorkQueue.model_fields)


def queue_from_row(row: Row) -> WorkQueue:
    return WorkQueue(
        work_pool=row["work_pool"],
        name=row["name"],
        priority=row["priority"],
        concurrency_limit=row["concurrency_limit"],
        paused=row["paused"],
        description=row["description"],
    )


def deployment_values(deployment: Deployment) -> dict[str, Any]:
    data = deployment.model_dump(mode="json", exclude={"schedules"})
    data["tags"] = list(data["tags"])
    data["pull_steps"] = list(data["pull_steps"])
    return data


def deployment_values_of(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """`deployment_values` of the deployment whose attribute form is `attrs` (every field but its schedules;
    `parameter_schema` left out when None), without the model; None when `attrs` is not that full form."""
    if not _DEPLOYMENT_REQUIRED <= attrs.keys() <= _DEPLOYMENT_COLUMNS:
        return None
    data = dict(attrs)
    data.setdefault("parameter_schema", None)
    data["tags"] = list(data["tags"])
    data["pull_steps"] = list(data["pull_steps"])
    return data


_DEPLOYMENT_COLUMNS = frozenset(Deployment.model_fields) - {"schedules"}
_DEPLOYMENT_REQUIRED = _DEPLOYMENT_COLUMNS - {"parameter_schema"}


def deployment_from_row(row: Row, schedules: Iterable[Schedule] = ()) -> Deployment:
    return Deployment(
        flow=row["flow"],
        name=row["name"],
        entrypoint=row["entrypoint"],
        work_pool=row["work_pool"],
        work_queue=row["work_queue"],
        job_variables=row["job_variables"],
        parameters=row["parameters"],
        schedules=tuple(schedules),
        tags=tuple(row["tags"]),
        description=row["description"],
        paused=row["paused"],
        concurrency_limit=row["concurrency_limit"],
        version=row["version"],
        pull_steps=tuple(row["pull_steps"]),
        parameter_schema=row["parameter_schema"],
    )


def schedule_values(flow: str, name: str, schedule: Schedule) -> dict[str, Any]:
    return {
        "flow": flow,
        "name": name,
        "slug": schedule.slug,
        "cron": schedule.cron,
        "interval": schedule.interval,
        "anchor_date": schedule.anchor_date,
        "rrule": schedule.rrule,
        "timezone": schedule.timezone,
        "day_or": schedule.day_or,
        "active": schedule.active,
        "parameters": schedule.parameters,
    }


def schedule_values_of(flow: str, name: str, attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """`schedule_values` of the schedule whose attribute form is `attrs`; None when the model must be built:
    an anchor date (its attribute form is text, its column a datetime), or not that full form."""
    if attrs.keys() != _SCHEDULE_FIELDS or attrs["anchor_date"] is not None:
        return None
    return {"flow": flow, "name": name, **attrs}


_SCHEDULE_FIELDS = frozenset(Schedule.model_fields)


def _whole(value: float | None) -> int | float | None:
    """The interval column is a float; a whole number of seconds reads back as an int (`3600`, not `3600.0`
    in exports and plans), as it was declared."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def schedule_from_row(row: Row) -> Schedule:
    return Schedule(
        slug=row["slug"],
        cron=row["cron"],
        interval=_whole(row["interval"]),
        anchor_date=row["anchor_date"],
        rrule=row["rrule"],
        timezone=row["timezone"],
        day_or=row["day_or"],
        active=row["active"],
        parameters=row["parameters"],
    )


# ------------------------------------------------------------------------------------------------ statuses


def worker_online(last_heartbeat: datetime, interval: float | None, now: datetime) -> bool:
    """ONLINE while the last heartbeat is younger than 3 heartbeat intervals (SPEC §1)."""
    span = (interval or DEFAULT_HEARTBEAT_INTERVAL) * WORKER_OFFLINE_MULTIPLE
    return now - last_heartbeat < timedelta(seconds=span)


def pool_status(paused: bool, any_worker_online: bool) -> str:
    if paused:
        return "PAUSED"
    return "READY" if any_worker_online else "NOT_READY"


def queue_status(paused: bool, last_polled: datetime | None, now: datetime) -> str:
    if paused:
        return "PAUSED"
    if last_polled is not None and now - last_polled <= QUEUE_READY_WINDOW:
        return "READY"
    return "NOT_READY"
