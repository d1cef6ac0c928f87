"""HTTP shapes of the imperative API on declared objects: creating and partially updating work pools, work
queues and deployments (`POST`/`PATCH /work_pools`, `/queues`, `/deployments`), the default pool, statuses.

Owns the request bodies of those routes, with the bounds the databases need (MAX_INT), and `set_fields`, which
tells the fields a partial update carries from those it leaves alone. Must never hold routes or rules: the
store decides what an update may change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciler.api.shapes import MAX_INT, Shape
from reconciler.model import BaseJobTemplate


class WorkPoolCreate(Shape):
    name: str
    type: str = "process"
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0, le=MAX_INT)
    base_job_template: BaseJobTemplate | None = None
    owner: str | None = None
    overwrite: bool = False


class PartialUpdate(BaseModel):
    """Only the fields sent are changed; an explicit null clears a field. Unknown fields are passed on, so the
    store refuses them with its own message naming the fields it can update."""

    model_config = ConfigDict(extra="allow")


class WorkPoolUpdate(PartialUpdate):
    description: str | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=0, le=MAX_INT)
    base_job_template: BaseJobTemplate | None = None


class WorkQueueCreate(Shape):
    name: str
    priority: int | None = Field(default=None, gt=0, le=MAX_INT)
    concurrency_limit: int | None = Field(default=None, ge=0, le=MAX_INT)
    paused: bool = False
    description: str | None = None
    owner: str | None = None


class WorkQueueUpdate(PartialUpdate):
    priority: int | None = Field(default=None, gt=0, le=MAX_INT)
    concurrency_limit: int | None = Field(default=None, ge=0, le=MAX_INT)
    paused: bool | None = None
    description: str | None = None


class DeploymentUpdate(PartialUpdate):
    entrypoint: str | None = None
    work_pool: str | None = None
    work_queue: str | None = None
    job_variables: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    tags: tuple[str, ...] | None = None
    description: str | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, gt=0, le=MAX_INT)
    version: str | None = None


def set_fields(update: BaseModel) -> dict[str, Any]:
    """The fields a partial update actually carries, as typed values (explicit nulls included)."""
    fields = {
        name: getattr(update, name) for name in update.model_fields_set if name in type(update).model_fields
    }
    return fields | dict(update.model_extra or {})


class DefaultPool(Shape):
    name: str | None = None


class Status(Shape):
    status: str
