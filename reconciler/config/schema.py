"""The config format as written: pydantic document models, and the JSON Schema generated from them.

Owns `ConfigDocument` (wp.yaml as a user writes it, after includes and prefect.yaml are merged in), its parts,
`ParsedConfig` (the documents that passed structural validation, each with its index in the merged document),
and `schemas/wp.schema.json` (`python -m reconciler.config.schema` rewrites it).

Must never do I/O except in `main()`, which writes the schema file, nor build domain objects (normalize does).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

SCHEMA_ID = "https://wp-gitops.dev/schemas/wp.schema.json"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "wp.schema.json"


# Bounds every store holds (PostgreSQL's integer and varchar(200)): checked at validate time, so a config
# that validates applies alike on SQLite and PostgreSQL.
MAX_INT = 2**31 - 1
MAX_NAME = 200
MAX_INTERVAL = 10 * 366 * 24 * 3600  # seconds: ten years


def _name() -> Any:
    return Field(min_length=1, max_length=MAX_NAME, description="Non-blank; none of / % & > <")


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LifecycleDoc(Doc):
    protect: bool = Field(False, description="A plan that would delete this object fails")
    ignore_changes: list[str] = Field(
        default_factory=list, description="Fields operators may change by hand without drift"
    )


class QueueDoc(LifecycleDoc):
    name: str = _name()
    priority: int | None = Field(
        None, gt=0, le=MAX_INT, strict=True, description="Unique within the pool; 1 = highest"
    )
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_INT, strict=True)
    paused: bool = False
    description: str | None = None


class BaseJobTemplateDoc(Doc):
    job_configuration: dict[str, Any] = Field(
        default_factory=dict, description="The job, with {{ placeholders }} filled from variables"
    )
    variables: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="A JSON Schema object declaring every placeholder",
    )


class WorkPoolDoc(LifecycleDoc):
    name: str = _name()
    type: str = Field("process", max_length=100, description="process, docker, kubernetes, ...")
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_INT, strict=True)
    base_job_template: BaseJobTemplateDoc | None = Field(
        None, description="Inline, or `!file PATH`; omitted = the type's default"
    )
    queues: list[QueueDoc] = Field(default_factory=list)


class ScheduleDoc(Doc):
    slug: str | None = Field(None, description="Unique within the deployment; keeps the schedule's identity")
    cron: str | None = None
    interval: int | float | None = Field(  # as the model: whole seconds stay whole
        None,
        gt=0,
        le=MAX_INTERVAL,
        allow_inf_nan=False,
        description="Seconds, or a duration as prefect.yaml writes it: PT10M (ISO 8601) or 1:30:00",
        json_schema_extra=lambda schema: _also_text(schema),
    )
    anchor_date: datetime | None = None
    rrule: str | None = None
    timezone: str | None = None
    day_or: bool = True
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_seconds(cls, value: Any) -> Any:
        return duration_seconds(value) if isinstance(value, str) else value


def _also_text(schema: dict[str, Any]) -> None:
    """The interval's JSON Schema: a positive number, or duration text (checked by `duration_seconds`).
    Written out because pydantic words the bound of `int | float` as a `gt` keyword JSON Schema lacks."""
    schema["anyOf"] = [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "minLength": 1},
        {"type": "null"},
    ]


_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def duration_seconds(text: str) -> int | float:
    """An interval written as text, in seconds: `600`, `PT10M` (ISO 8601) or `1:30:00` (and `1 day, 2:00:00`),
    read as Prefect reads them (pydantic's timedelta); whole seconds as an int."""
    stripped = text.strip()
    try:
        seconds = float(stripped)
    except ValueError:
        try:
            seconds = _DURATION.validate_python(stripped).total_seconds()
        except ValidationError:
            raise ValueError(
                f"'{text}' is not a duration; write seconds (600), ISO 8601 (PT10M) or hours:minutes:seconds "
                "(1:30:00)"
            ) from None
    return int(seconds) if seconds.is_integer() else seconds


class WorkPoolRefDoc(Doc):
    name: str | None = Field(None, description="Omitted = the store's default pool")
    work_queue_name: str | None = Field(None, description="Omitted = the pool's default queue")
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the pool's variables"
    )


class DeploymentDoc(LifecycleDoc):
    name: str = _name()
    entrypoint: str = Field(description="path/to/file.py:function, relative to the project directory")
    flow: str | None = Field(
        None, max_length=MAX_NAME, description="Default: the @flow(name=...) of the entrypoint, else its name"
    )
    # prefect.yaml's `flow_name`: Prefect ignores it (it registers the flow's real name); kept only to warn when
    # it differs from that name. Not part of wp's documented format.
    flow_name: SkipJsonSchema[str | None] = Field(None, exclude=True)
    work_pool: WorkPoolRefDoc | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleDoc] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(None, gt=0, le=MAX_INT, strict=True)
    version: str | None = None
    pull: list[dict[str, Any]] | None = Field(None, description="Steps run before the entrypoint")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # `version: 1.0` is a number in YAML but a label to the user.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class ConfigDocument(Doc):
    """wp.yaml: a project's work pools, queues and deployments."""

    model_config = ConfigDict(extra="forbid", title="wp configuration")

    project: str = Field(min_length=1, description="Owner of everything declared here")
    include: list[str] = Field(default_factory=list, description="Globs of further YAML files, ** allowed")
    prune: bool = Field(False, description="Delete managed objects that are no longer declared")
    secret_patterns: list[str] = Field(
        default_factory=list, description="Key patterns masked in every output, added to *TOKEN* *SECRET* ..."
    )
    work_pools: list[WorkPoolDoc] = Field(default_factory=list)
    deployments: list[DeploymentDoc] = Field(default_factory=list)


@dataclass
class ParsedConfig:
    """The documents that passed structural validation; indexes are positions in the merged document."""

    project: str = ""
    prune: bool = False
    secret_patterns: list[str] = field(default_factory=list)
    pools: list[tuple[int, WorkPoolDoc]] = field(default_factory=list)
    deployments: list[tuple[int, DeploymentDoc]] = field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of wp.yaml."""
    schema = ConfigDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
