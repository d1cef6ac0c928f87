"""The wire shapes of the wp HTTP API's reconcile protocol, and the ground every shape stands on.

Owns the base `Shape` (unknown fields refused), UTC times (`UtcDatetime`), the error envelope, and the bodies
of snapshot, apply (the unmasked plan form, the apply record), history, plan inputs and the lock, with the pure
functions that turn them into the domain types of `reconciler.model`, `reconciler.engine.plan` and
`reconciler.store.base`. The imperative CRUD bodies are `object_shapes.py`, the runtime ones `run_shapes.py`,
the sync status `sync_shapes.py`. Shared by the server (`reconciler.api`) and the client
(`reconciler.store.client`) so both ends speak the same shape. Must never do I/O and never import FastAPI or
httpx.

The plan travels UNMASKED here (unlike `plan_to_json`, which is for files and humans): the server must
write the real secret values, and the channel is the API's own (authenticated, ideally TLS) connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.engine.plan import Action, AttributeChange, Change, Note, Plan, Reason
from reconciler.model import (
    DEFAULT_SECRET_PATTERNS,
    KINDS,
    Key,
    Kind,
    ManagedObject,
)
from reconciler.store.base import (
    MAX_LEASE_SECONDS,
    ApplyRecord,
    DeletedObject,
    LiveObject,
    LockInfo,
    Snapshot,
)
from reconciler.store.holder import HolderProcess


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


def as_utc(value: datetime) -> datetime:
    """Times on the wire without an offset are taken as UTC: the protocol speaks aware UTC times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]

# Counts and limits must fit the databases' 64-bit integers; larger numbers are refused with a 422 up front.
MAX_INT = 2**63 - 1


# --------------------------------------------------------------------------------------------------- errors


class ErrorDetail(Shape):
    type: str
    message: str
    path: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Shape):
    """Every non-2xx answer: `{"error": {"type", "message", "path"}}`."""

    error: ErrorDetail


# ------------------------------------------------------------------------------------------------- snapshot


class LiveObjectShape(Shape):
    kind: Kind
    name: str
    value: dict[str, Any]
    owner: str | None = None
    fingerprint: str
    applied: dict[str, Any] | None = None
    status: str | None = None
    protected: bool = False


class DeletedObjectShape(Shape):
    kind: Kind
    name: str
    owner: str
    applied: dict[str, Any] | None = None


class SnapshotShape(Shape):
    objects: list[LiveObjectShape]
    default_pool: str | None = None
    deleted: list[DeletedObjectShape] = Field(default_factory=list)
    revision: int | None = None  # the store revision it was read at
    sealed: bool = Field(default=False, description="secret values are masks `(sensitive sha256:…)`")


def _value_of(kind: Kind, value: Mapping[str, Any]) -> ManagedObject:
    model = KINDS[kind].model
    obj = model.model_validate(dict(value))
    return obj  # type: ignore[return-value]  # KINDS maps each kind to one of the ManagedObject models


def snapshot_to_shape(snapshot: Snapshot) -> SnapshotShape:
    objects = [
        LiveObjectShape(
            kind=live.key.kind,
            name=live.key.name,
            value=live.value.model_dump(mode="json"),
            owner=live.owner,
            fingerprint=live.fingerprint,
            applied=dict(live.applied) if live.applied is not None else None,
            status=live.status,
            protected=live.protected,
        )
        for live in snapshot.objects.values()
    ]
    deleted = [
        DeletedObjectShape(
            kind=d.key.kind,
            name=d.key.name,
            owner=d.owner,
            applied=dict(d.applied) if d.applied is not None else None,
        )
        for d in snapshot.deleted.values()
    ]
    return SnapshotShape(
        objects=objects, default_pool=snapshot.default_pool, deleted=deleted, revision=snapshot.revision
    )


def snapshot_from_shape(shape: SnapshotShape) -> Snapshot:
    objects: dict[Key, LiveObject] = {}
    for o in shape.objects:
        key = Key(o.kind, o.name)
        objects[key] = LiveObject(
            key=key,
            value=_value_of(o.kind, o.value),
            owner=o.owner,
            fingerprint=o.fingerprint,
            applied=o.applied,
            status=o.status,
            protected=o.protected,
        )
    deleted = {
        Key(d.kind, d.name): DeletedObject(Key(d.kind, d.name), d.owner, d.applied) for d in shape.deleted
    }
    return Snapshot(
        objects=objects,
        default_pool=shape.default_pool,
        deleted=deleted,
        revision=shape.revision,
        sealed=shape.sealed,
    )


# ------------------------------------------------------------------------------------------ plan (unmasked)


class AttributeChangeShape(Shape):
    path: str
    before: Any = None
    after: Any = None
    forces_replacement: bool = False


class NoteShape(Shape):
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class ChangeShape(Shape):
    address: str = Field(description="KIND.NAME, e.g. work_pool.my-pool")
    action: Action
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: Reason | None = None
    attributes: list[AttributeChangeShape] = Field(default_factory=list)
    owner_before: str | None = None
    notes: list[NoteShape] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        Key.parse(v)  # raises ValueError with a message that names the expected form
        return v

    @model_validator(mode="after")
    def _after_is_an_object(self) -> ChangeShape:
        # The store builds the object from `after`; refusing a malformed one here gives a 422 that names the
        # field instead of a failure deep inside the store's transaction.
        if self.after is not None:
            _value_of(Key.parse(self.address).kind, self.after)
        elif self.action in (Action.CREATE, Action.UPDATE, Action.REPLACE):
            raise ValueError(f"a {self.action.value} change needs `after`")
        return self


class PlanShape(Shape):
    project: str
    changes: list[ChangeShape]
    drift: list[ChangeShape] = Field(default_factory=list)
    fingerprints: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    prune: bool = False
    targets: list[str] = Field(default_factory=list)
    destroy: bool = False
    source_dir: str | None = None
    secret_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_PATTERNS))
    protected: list[str] = Field(default_factory=list, description="Addresses the config marks protect: true")
    protection_changes: list[str] = Field(
        default_factory=list, description="Addresses whose protection this plan turns on or off"
    )
    format_version: str = "1.0"


def _change_to_shape(c: Change) -> ChangeShape:
    return ChangeShape(
        address=c.address,
        action=c.action,
        before=dict(c.before) if c.before is not None else None,
        after=dict(c.after) if c.after is not None else None,
        reason=c.reason,
        attributes=[
            AttributeChangeShape(
                path=a.path, before=a.before, after=a.after, forces_replacement=a.forces_replacement
            )
            for a in c.attributes
        ],
        owner_before=c.owner_before,
        notes=[NoteShape(kind=n.kind, message=n.message, data=dict(n.data)) for n in c.notes],
    )


def _change_from_shape(s: ChangeShape) -> Change:
    return Change(
        key=Key.parse(s.address),
        action=s.action,
        before=s.before,
        after=s.after,
        reason=s.reason,
        attributes=tuple(
            AttributeChange(a.path, a.before, a.after, a.forces_replacement) for a in s.attributes
        ),
        owner_before=s.owner_before,
        notes=tuple(Note(n.kind, n.message, n.data) for n in s.notes),
    )


def plan_to_shape(plan: Plan) -> PlanShape:
    return PlanShape(
        project=plan.project,
        changes=[_change_to_shape(c) for c in plan.changes],
        drift=[_change_to_shape(c) for c in plan.drift],
        fingerprints=dict(plan.fingerprints),
        warnings=list(plan.warnings),
        prune=plan.prune,
        targets=list(plan.targets),
        destroy=plan.destroy,
        source_dir=plan.source_dir,
        secret_patterns=list(plan.secret_patterns),
        protected=list(plan.protected),
        protection_changes=list(plan.protection_changes),
        format_version=plan.format_version,
    )


def plan_from_shape(s: PlanShape) -> Plan:
    return Plan(
        project=s.project,
        changes=tuple(_change_from_shape(c) for c in s.changes),
        drift=tuple(_change_from_shape(c) for c in s.drift),
        fingerprints=dict(s.fingerprints),
        warnings=tuple(s.warnings),
        prune=s.prune,
        targets=tuple(s.targets),
        destroy=s.destroy,
        source_dir=s.source_dir,
        secret_patterns=tuple(s.secret_patterns),
        protected=tuple(s.protected),
        protection_changes=tuple(s.protection_changes),
        format_version=s.format_version,
    )


# ------------------------------------------------------------------------------------- apply, history, lock


class ApplyRecordShape(Shape):
    project: str
    actor: str
    summary: dict[str, int]
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    plan_hash: str | None = None
    time: UtcDatetime | None = None
    id: int | None = None
    addresses: list[str] = Field(default_factory=list)
    git_author: str | None = None
    git_message: str | None = None
    base_revision: int | None = None  # the store revision the plan was made at (sent with an apply)
    revision: int | None = None  # the revision the apply produced, when the store was still at base_revision


def record_to_shape(r: ApplyRecord) -> ApplyRecordShape:
    return ApplyRecordShape(
        project=r.project,
        actor=r.actor,
        summary=dict(r.summary),
        git_commit=r.git_commit,
        git_branch=r.git_branch,
        git_dirty=r.git_dirty,
        plan_hash=r.plan_hash,
        time=r.time,
        id=r.id,
        addresses=list(r.addresses),
        git_author=r.git_author,
        git_message=r.git_message,
        base_revision=r.base_revision,
        revision=r.revision,
    )


def record_from_shape(s: ApplyRecordShape) -> ApplyRecord:
    return ApplyRecord(
        project=s.project,
        actor=s.actor,
        summary=dict(s.summary),
        git_commit=s.git_commit,
        git_branch=s.git_branch,
        git_dirty=s.git_dirty,
        plan_hash=s.plan_hash,
        time=s.time,
        id=s.id,
        addresses=tuple(s.addresses),
        git_author=s.git_author,
        git_message=s.git_message,
        base_revision=s.base_revision,
        revision=s.revision,
    )


class NoopShape(Shape):
    """`GET /plan-inputs/{key}`: the store revision now and the known no-op recorded under the key."""

    revision: int
    record: dict[str, Any] | None = None
    record_revision: int | None = None


class NoopRequest(Shape):
    """`PUT /plan-inputs/{key}`: the plan described by `record` had no changes at store `revision`."""

    record: dict[str, Any]
    revision: int


class ApplyRequest(Shape):
    plan: PlanShape
    record: ApplyRecordShape
    lock_id: str | None = None


class HolderProcessShape(Shape):
    """The process holding a lock, as it says: a client on the same host can tell when it has died."""

    host: str = Field(min_length=1, max_length=255)
    pid: int = Field(gt=0, le=2**31 - 1)
    started: str | None = Field(default=None, max_length=100)


class LockShape(Shape):
    id: str
    holder: str
    operation: str
    acquired_at: UtcDatetime
    expires_at: UtcDatetime
    process: HolderProcessShape | None = None


def lock_to_shape(lock: LockInfo) -> LockShape:
    process = lock.process
    return LockShape(
        id=lock.id,
        holder=lock.holder,
        operation=lock.operation,
        acquired_at=lock.acquired_at,
        expires_at=lock.expires_at,
        process=HolderProcessShape(**asdict(process)) if process is not None else None,
    )


def lock_from_shape(s: LockShape) -> LockInfo:
    p = s.process
    return LockInfo(
        id=s.id,
        holder=s.holder,
        operation=s.operation,
        acquired_at=s.acquired_at,
        expires_at=s.expires_at,
        host=p.host if p else None,
        pid=p.pid if p else None,
        started=p.started if p else None,
    )


class LockRequest(Shape):
    holder: str = Field(min_length=1)
    operation: str
    timeout: float = Field(default=0.0, ge=0, le=3600)
    # a lease is at most an hour (MAX_LEASE_SECONDS): a holder that dies keeps the lock that long
    ttl: float = Field(default=600.0, gt=0, le=MAX_LEASE_SECONDS)
    process: HolderProcessShape | None = None

    def holder_process(self) -> HolderProcess | None:
        p = self.process
        return HolderProcess(p.host, p.pid, p.started) if p is not None else None


class CurrentLock(Shape):
    lock: LockShape | None = None
