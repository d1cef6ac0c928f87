"""The domain model: what wp manages, as frozen values.

Owns the declared object types (work pools, queues, deployments, schedules), their identity (`Key`), the KINDS
table (apply order, parents, fields the server owns, fields that force replacement, secret key patterns), and the
canonical attribute form every other stage compares (`attributes()`), plus `fingerprint()` of a live object.

Must never do I/O, read the clock or the environment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.names import FORBIDDEN_NAME_CHARS as FORBIDDEN_NAME_CHARS
from reconciler.names import NAME_PATTERN as NAME_PATTERN
from reconciler.names import check_name as check_name
from reconciler.secret_keys import DEFAULT_SECRET_PATTERNS as DEFAULT_SECRET_PATTERNS
from reconciler.secret_keys import SECRET_REFERENCE_KEYS as SECRET_REFERENCE_KEYS
from reconciler.secret_keys import SENSITIVE_MASK as SENSITIVE_MASK
from reconciler.secret_keys import is_secret_key as is_secret_key
from reconciler.secret_keys import is_secret_path as is_secret_path
from reconciler.secret_keys import is_secret_reference as is_secret_reference
from reconciler.secret_keys import mask_secrets as mask_secrets

DEFAULT_QUEUE = "default"


Name = Annotated[str, Field(min_length=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Kind(StrEnum):
    WORK_POOL = "work_pool"
    WORK_QUEUE = "work_queue"
    DEPLOYMENT = "deployment"
    SCHEDULE = "schedule"


class Key(NamedTuple):
    """Identity of one managed object. `name` is the address suffix: `pool`, `pool/queue`, `flow/name`,
    `flow/name#slug`."""

    kind: Kind
    name: str

    @property
    def address(self) -> str:
        # `kind + "."` is plain str concatenation (Kind is a StrEnum): reading `.value` took most of the
        # ~100,000 address lookups of a large plan.
        return self.kind + "." + self.name

    def __str__(self) -> str:
        return self.address

    @classmethod
    def parse(cls, address: str) -> Key:
        kind, sep, name = address.partition(".")
        if not sep or not name:
            raise ValueError(f"{address!r} is not an address; expected KIND.NAME, e.g. work_pool.my-pool")
        try:
            return cls(Kind(kind), name)
        except ValueError:
            kinds = ", ".join(k.value for k in Kind)
            raise ValueError(f"{address!r}: unknown kind {kind!r}; expected one of {kinds}") from None

    @property
    def parent(self) -> Key | None:
        if self.kind is Kind.WORK_QUEUE:
            return Key(Kind.WORK_POOL, self.name.split("/", 1)[0])
        if self.kind is Kind.SCHEDULE:
            return Key(Kind.DEPLOYMENT, self.name.split("#", 1)[0])
        return None


def pool_key(pool: str) -> Key:
    return Key(Kind.WORK_POOL, pool)


def queue_key(pool: str, queue: str) -> Key:
    return Key(Kind.WORK_QUEUE, f"{pool}/{queue}")


def deployment_key(flow: str, name: str) -> Key:
    return Key(Kind.DEPLOYMENT, f"{flow}/{name}")


def schedule_key(flow: str, name: str, slug: str) -> Key:
    return Key(Kind.SCHEDULE, f"{flow}/{name}#{slug}")


class PoolType(StrEnum):
    PROCESS = "process"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class BaseJobTemplate(Frozen):
    """`job_configuration` holds `{{ placeholders }}` filled from `variables` (a JSON Schema object)."""

    job_configuration: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class WorkPool(Frozen):
    name: str
    type: str = PoolType.PROCESS.value
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0)
    # None in a config means "the type's default"; the normalizer fills it, so live pools always carry one.
    base_job_template: BaseJobTemplate | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "work pool name")


class WorkQueue(Frozen):
    work_pool: str
    name: str
    priority: int | None = Field(default=None, gt=0)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "work queue name")

    @property
    def key(self) -> Key:
        return queue_key(self.work_pool, self.name)


class Schedule(Frozen):
    """Exactly one of cron, interval (seconds) or rrule."""

    slug: str
    cron: str | None = None
    interval: int | float | None = Field(default=None, gt=0)  # seconds; whole numbers stay ints in plans
    anchor_date: datetime | None = None
    rrule: str | None = None
    timezone: str | None = None
    day_or: bool = True
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) + (self.interval is None) + (self.rrule is None) == 2:
            return self  # exactly one set: the usual case, settled without building the list below
        given = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"schedule {self.slug!r} must set exactly one of cron, interval, rrule (got {', '.join(given) or 'none'})"
            )
        return self


class PullStep(Frozen):
    """One `pull:` step, e.g. `{"prefect.deployments.steps.git_clone": {"repository": ...}}`, kept as written."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Deployment(Frozen):
    flow: str
    name: str
    entrypoint: str
    work_pool: str | None = None  # None = the store's default pool
    work_queue: str | None = None  # None = the pool's `default` queue
    job_variables: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(default=None, gt=0)
    version: str | None = None
    pull_steps: tuple[dict[str, Any], ...] = ()
    # the flow function's parameters, read from the code at plan time (reconciler.parameters); None: never read
    parameter_schema: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "deployment name")

    @field_validator("flow")
    @classmethod
    def _flow(cls, v: str) -> str:
        return check_name(v, "flow name")

    @property
    def key(self) -> Key:
        return deployment_key(self.flow, self.name)


class Lifecycle(Frozen):
    """Per-object options that steer the plan, never stored as attributes."""

    protect: bool = False
    ignore_changes: tuple[str, ...] = ()


ManagedObject = WorkPool | WorkQueue | Deployment | Schedule


@dataclass(frozen=True)
class KindInfo:
    kind: Kind
    model: type[BaseModel]
    order: int  # creates and updates go in ascending order, deletes in descending
    parent: Kind | None
    identity: tuple[str, ...]  # fields that make the key; changing them is a different object
    replace_forcing: tuple[str, ...]  # fields that cannot be updated in place
    server_owned: tuple[str, ...]  # never diffed


KINDS: dict[Kind, KindInfo] = {
    Kind.WORK_POOL: KindInfo(Kind.WORK_POOL, WorkPool, 0, None, ("name",), ("type",), ("status", "id")),
    Kind.WORK_QUEUE: KindInfo(
        Kind.WORK_QUEUE,
        WorkQueue,
        1,
        Kind.WORK_POOL,
        ("work_pool", "name"),
        (),
        ("status", "id", "last_polled"),
    ),
    Kind.DEPLOYMENT: KindInfo(
        Kind.DEPLOYMENT, Deployment, 2, Kind.WORK_POOL, ("flow", "name"), (), ("status", "id", "schedules")
    ),
    Kind.SCHEDULE: KindInfo(Kind.SCHEDULE, Schedule, 3, Kind.DEPLOYMENT, ("slug",), (), ("id",)),
}


def key_of(obj: ManagedObject, deployment: Deployment | None = None) -> Key:
    """The key of an object; a schedule needs its deployment."""
    if isinstance(obj, WorkPool):
        return pool_key(obj.name)
    if isinstance(obj, WorkQueue):
        return obj.key
    if isinstance(obj, Deployment):
        return obj.key
    if deployment is None:
        raise ValueError("a schedule's key needs its deployment")
    return schedule_key(deployment.flow, deployment.name, obj.slug)


def attributes(obj: ManagedObject) -> dict[str, Any]:
    """The canonical, JSON-ready attribute form of an object: what diff compares and plans carry.

    A deployment's schedules are separate objects (`schedule.flow/name#slug`), so they are left out here.
    """
    data = obj.model_dump(mode="json", exclude={"schedules"} if isinstance(obj, Deployment) else None)
    if isinstance(obj, Deployment) and obj.parameter_schema is None:
        del data["parameter_schema"]  # a deployment whose code wp never read: nothing to show or compare
    return data


# One encoder for every call: building a JSONEncoder per call was a fifth of a 25,000-object snapshot.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


_DIGITS = frozenset(b"0123456789")


def _negative_exponent(encoded: bytes) -> bool:
    """Whether orjson's text holds a float written with a negative exponent (`1e-7`). Only a digit before `e-`
    counts: names such as `pipeline-daily` hold `e-` too, and sent every value naming one to the slower encoder."""
    at = encoded.find(b"e-")
    while at > 0:
        if encoded[at - 1] in _DIGITS:
            return True
        at = encoded.find(b"e-", at + 2)
    return False


def canonical_json(value: Any, *, finite: bool = False) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text.

    The text is the standard library's (`_CANONICAL`), byte for byte: plan hashes, fingerprints and sealed
    secrets' digests are kept from older versions. orjson writes the same text ~5x faster, except where it is
    checked here and left to `_CANONICAL`: what it refuses (integers beyond 64 bits, keys that are not strings,
    lone surrogates), NaN and infinities (it writes `null`: a text holding `null` must decode back to the
    value), and floats below 1e-4 in magnitude (`1e-7`, `0.00005` where Python writes `1e-07`, `5e-05`: any
    digit followed by `e-`, or `0.0000`, in the text). Dates, times and dataclasses go to `default=str`, as in the standard library;
    UUIDs and enum members orjson writes itself, as the standard library does for UUIDs and str/int enums (a
    plain Enum, which wp never puts in a value, would be written by value instead of by `str`).
    `finite`: the caller knows `value` holds no NaN or infinity (a model dumped in JSON mode, where pydantic
    writes them as null), so a `null` in the text needs no check."""
    try:
        encoded = orjson.dumps(value, default=str, option=_ORJSON)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _CANONICAL.encode(value)
    if _negative_exponent(encoded) or b"0.0000" in encoded:
        return _CANONICAL.encode(value)
    if not finite and b"null" in encoded and orjson.loads(encoded) != value:
        return _CANONICAL.encode(value)
    return encoded.decode()


def fingerprint(attrs: Mapping[str, Any], owner: str | None) -> str:
    """A short digest of a live object's attributes and owner; a plan records it to detect staleness."""
    return hashlib.sha256(canonical_json({"a": attrs, "o": owner}).encode()).hexdigest()[:16]


def default_flow_name(function_name: str) -> str:
    """A flow's name when its decorator gives none: the function name with `_` as `-`."""
    return function_name.replace("_", "-")


class DesiredState(Frozen):
    """Everything a project declares, normalized: the output of config loading, the input of diff."""

    project: str
    pools: tuple[WorkPool, ...] = ()
    queues: tuple[WorkQueue, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    lifecycle: dict[str, Lifecycle] = Field(default_factory=dict)  # by address
    prune: bool = False
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    # where it was read from; plan files record it so `wp apply PLANFILE` can re-read secrets
    source_dir: str | None = None


class FlowRun(Frozen):
    """One execution of a deployment. `job_variables` holds only the run-level overrides."""

    id: str
    name: str
    flow: str
    deployment: str  # "flow/name"
    work_pool: str
    work_queue: str
    state: str  # a RunState value
    state_message: str | None = None
    expected_start_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    created: datetime | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    schedule_slug: str | None = None  # set for runs the scheduler made
    idempotency_key: str | None = None
    worker: str | None = None  # the worker that claimed it
    infrastructure_id: str | None = None  # pid, container id, job name
    run_count: int = 0


class Worker(Frozen):
    work_pool: str
    name: str
    last_heartbeat: datetime
    heartbeat_interval: float = 30.0
    status: str = "OFFLINE"  # ONLINE | OFFLINE, computed against a clock by the store
    host: str | None = None  # where it runs, as its heartbeat reports it
    pid: int | None = None
    runs_in_hand: int = 0  # runs it holds (PENDING, RUNNING, CANCELLING), counted by the store


class RunStateChange(Frozen):
    """One entry of a run's state history, written by the store in the transaction that changes the state."""

    run_id: str
    from_state: str | None  # None: the run had no state before (never written today: creation is `created`)
    to_state: str
    timestamp: datetime
    message: str | None = None
    actor: str | None = None  # "worker NAME", "user@host (wp flow-run cancel)", "web UI", "scheduler", ...


class LogLine(Frozen):
    run_id: str
    timestamp: datetime
    stream: str = "stdout"  # stdout | stderr | wp
    message: str
    seq: int = 0
