"""The Store protocol: every byte of persisted state goes through these calls.

Implemented by SqlStore (SQLite / PostgreSQL, `store/sql.py`) and HttpStore (a wp server, `store/client.py`);
one contract suite (`tests/contract/`) runs against each. The protocol is synchronous; times are aware datetimes
(UTC) and `now` is passed in wherever a status or a due time depends on the clock, so tests can inject it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from reconciler.engine.plan import Plan
from reconciler.model import (
    DEFAULT_SECRET_PATTERNS,
    Deployment,
    FlowRun,
    Key,
    LogLine,
    ManagedObject,
    RunStateChange,
    Worker,
    WorkPool,
    WorkQueue,
)
from reconciler.store.holder import HolderProcess
from reconciler.store.quick import NoopState as NoopState

ApplyProgress = Callable[[str, int, int], None]
"""Told `(phase, changes written, changes in the plan)` while an apply's one transaction goes on: "checking",
"writing" after each batch, "checking references", "recording". For a progress bar; never for control."""


@dataclass(frozen=True)
class LiveObject:
    """One object as the store holds it."""

    key: Key
    value: ManagedObject
    owner: str | None  # the project that manages it; None = made by hand
    # A digest of the object's attributes and owner as this store holds them: a plan records it to detect
    # staleness, comparing it only with fingerprints read from the same store. SqlStore digests the stored row
    # (live.row_fingerprint); objects made in memory use model.fingerprint(attributes(value), owner).
    fingerprint: str
    # attributes as wp last applied them; None if wp never applied it. Drift = live attributes differ from these.
    applied: Mapping[str, Any] | None = None
    status: str | None = None  # runtime status (pools, queues); never diffed
    protected: bool = False  # `protect: true` when last applied; a plan may not delete it, declared or not
    # attributes(value), as `model.attributes` dumps them (plain JSON values), so diff need not dump the model
    # again (None: not carried, diff computes them). Derived from `value`, hence left out of equality.
    # Read-only: diff shares them in the plan.
    attrs: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DeletedObject:
    """A managed object deleted outside wp (by `wp work-pool delete`, the API, ...): the plan shows it as drift
    until an apply puts it back or the project stops declaring it."""

    key: Key
    owner: str  # the project that managed it
    applied: Mapping[str, Any] | None = None  # its attributes as wp last applied them


@dataclass(frozen=True)
class Snapshot:
    objects: Mapping[Key, LiveObject]
    default_pool: str | None = None
    deleted: Mapping[Key, DeletedObject] = field(default_factory=dict)
    # The store revision this snapshot was read at (None: the store keeps none). It is read before the objects,
    # so a snapshot may be newer than its revision, never older: a no-op recorded with it can only be too
    # cautious (see reconciler/shortcut.py).
    revision: int | None = None
    # read through the HTTP API: secret values are sealed masks (`reconciler.secret_values`), which a plan
    # puts back from the config where they match
    sealed: bool = False

    def get(self, key: Key) -> LiveObject | None:
        return self.objects.get(key)


MAX_LEASE_SECONDS = 3600.0  # the longest lease an apply may take: a dead holder's lease blocks for this long


@dataclass(frozen=True)
class RunInputs:
    """What a worker renders and starts a run from, secret values in clear: only for the worker holding it."""

    run: FlowRun
    deployment: Deployment
    work_pool: WorkPool
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS  # the store's `secret_patterns()`


@dataclass(frozen=True)
class LockInfo:
    id: str
    holder: str
    operation: str
    acquired_at: datetime
    expires_at: datetime
    host: str | None = None  # the holding process, when it said (store/holder.py): a dead one can be told
    pid: int | None = None
    started: str | None = None

    @property
    def process(self) -> HolderProcess | None:
        if self.host is None or self.pid is None:
            return None
        return HolderProcess(self.host, self.pid, self.started)


@dataclass(frozen=True)
class ApplyRecord:
    """One entry of `wp history`."""

    project: str
    actor: str
    summary: Mapping[str, int]  # add / change / destroy
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    plan_hash: str | None = None
    time: datetime | None = None  # set by the store when written
    id: int | None = None
    addresses: Sequence[str] = field(default_factory=tuple)
    git_author: str | None = None  # "Name <email>" of the commit applied
    git_message: str | None = None  # its message's first line
    # The store revision the plan was made at (Snapshot.revision), sent with an apply; not stored in history.
    base_revision: int | None = None
    # Set by apply when the store was still at `base_revision` when the apply began: the revision the apply
    # produced, i.e. the store is then exactly the plan's view plus the plan's writes. None otherwise.
    revision: int | None = None


class SyncPhase(StrEnum):
    """Where a continuous sync stands (SPEC §8): git and the store agree, differ, the last attempt failed, or
    applying is suspended. `Unknown` until the first pass has planned."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class SyncKey:
    """One watched source: a repository (URL or path as given), a branch and a project directory in it."""

    repo: str
    branch: str
    path: str

    def __str__(self) -> str:
        where = f"/{self.path}" if self.path not in ("", ".") else ""
        return f"{self.repo}@{self.branch}{where}"


@dataclass(frozen=True)
class SyncStatus:
    """The status record of one sync (`wp sync status`, `GET /sync`).

    The loop writes every field but `suspended` and `requested_at`, which `wp sync suspend|resume|now` write;
    a request is pending while `requested_at` is later than `handled_request_at`."""

    key: SyncKey
    phase: SyncPhase = SyncPhase.UNKNOWN
    reason: str = ""
    message: str = ""
    fetched_revision: str | None = None
    attempted_revision: str | None = None
    applied_revision: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_plan: Mapping[str, Any] | None = None  # {"add", "change", "destroy"} of the last plan with changes
    drift: Sequence[str] = ()  # addresses changed outside wp, while OutOfSync
    attempts: Sequence[Mapping[str, Any]] = ()  # the last 10 attempts, newest first
    failures: int = 0  # consecutive failed attempts (the backoff exponent)
    live_digest: str | None = None  # the live state the last failed attempt saw
    suspended: bool = False
    requested_at: datetime | None = None
    handled_request_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def request_pending(self) -> bool:
        return self.requested_at is not None and (
            self.handled_request_at is None or self.requested_at > self.handled_request_at
        )


@runtime_checkable
class Store(Protocol):
    # ------------------------------------------------------------------ declared objects: reconcile
    def snapshot(self, only: Collection[Key] | None = None) -> Snapshot:
        """All pools, queues, deployments and schedules, with owners and fingerprints, in a few queries.
        With `only`, just those of these objects that exist (a Terraform write reads the few objects it
        changes, not the whole store)."""
        ...

    def apply(
        self,
        plan: Plan,
        record: ApplyRecord,
        *,
        lock_id: str | None = None,
        progress: ApplyProgress | None = None,
    ) -> ApplyRecord:
        """Write every actionable change of `plan` in one transaction, owner = plan.project; `progress` is told
        how far the transaction is (a store behind HTTP can only tell the start and the end).

        First re-reads each object the plan touches and raises StalePlanError (naming it) if its fingerprint differs
        from `plan.fingerprints` (a missing fingerprint means "did not exist"). Any failure rolls everything back.
        Records `record` in the history in the same transaction and returns it with id and time.
        """
        ...

    def acquire_lock(
        self,
        holder: str,
        operation: str,
        *,
        timeout: float = 0.0,
        ttl: float = 600.0,
        process: HolderProcess | None = None,
    ) -> LockInfo:
        """Take the lease lock, waiting up to `timeout` seconds; LockHeldError naming the holder otherwise.
        An expired lease is taken over. `ttl` is at most MAX_LEASE_SECONDS (ValidationError). `process` is
        recorded so a holder that died can be told (`reconciler.store.holder.gone`)."""
        ...

    def release_lock(self, lock_id: str) -> None: ...

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Break the lock with that id; NotFoundError if no such lock is held."""
        ...

    def current_lock(self) -> LockInfo | None: ...

    def list_history(self, project: str | None = None, limit: int = 50) -> list[ApplyRecord]: ...

    def read_noop(self, key: str) -> NoopState:
        """The store revision now and the known no-op recorded under `key` (reconciler/shortcut.py)."""
        ...

    def save_noop(self, key: str, record: Mapping[str, Any], revision: int) -> None:
        """Remember that the plan whose inputs `record` describes had no changes at store `revision`; keeps the
        newest few hundred keys."""
        ...

    # ------------------------------------------------------------------ imperative CRUD (owner None unless given)
    def create_work_pool(
        self, pool: WorkPool, *, owner: str | None = None, overwrite: bool = False
    ) -> WorkPool:
        """Also creates its `default` queue. ConflictError if it exists and not overwrite."""
        ...

    def update_work_pool(self, name: str, **fields: Any) -> WorkPool: ...

    def delete_work_pool(self, name: str, *, cascade: bool = False) -> None:
        """ConflictError if the pool, or one of its queues, is protected; if deployments use it (unless
        `cascade`: they go too); or if runs are in flight in it. Its waiting runs go with it."""
        ...

    def get_work_pool(self, name: str) -> WorkPool: ...

    def list_work_pools(self) -> list[WorkPool]: ...

    def work_pool_status(self, name: str, now: datetime) -> str:
        """PAUSED / READY / NOT_READY (SPEC §1)."""
        ...

    def set_default_work_pool(self, name: str | None) -> None: ...

    def get_default_work_pool(self) -> str | None: ...

    def create_work_queue(self, queue: WorkQueue, *, owner: str | None = None) -> WorkQueue:
        """Priority None = first free after the highest; a taken priority shifts the others down to a gap."""
        ...

    def update_work_queue(self, pool: str, name: str, **fields: Any) -> WorkQueue: ...

    def delete_work_queue(self, pool: str, name: str, *, cascade: bool = False) -> None:
        """ValidationError for the `default` queue; ConflictError as delete_work_pool."""
        ...

    def get_work_queue(self, pool: str, name: str) -> WorkQueue: ...

    def list_work_queues(self, pool: str) -> list[WorkQueue]: ...

    def work_queue_status(self, pool: str, name: str, now: datetime) -> str: ...

    def get_deployment(self, flow: str, name: str) -> Deployment: ...

    def list_deployments(self, work_pool: str | None = None) -> list[Deployment]: ...

    def update_deployment(self, flow: str, name: str, **fields: Any) -> Deployment:
        """ValidationError if it would name a pool or queue that does not exist."""
        ...

    def delete_deployment(self, flow: str, name: str) -> None:
        """ConflictError if protected or if runs of it are in flight; its waiting runs go with it."""
        ...

    # ------------------------------------------------------------------ runtime (issue 4)
    def create_flow_run(self, run: FlowRun) -> FlowRun: ...

    def get_flow_run(self, run_id: str) -> FlowRun: ...

    def list_flow_runs(
        self,
        *,
        states: Sequence[str] = (),
        work_pool: str | None = None,
        work_queue: str | None = None,
        deployment: str | None = None,
        before: datetime | None = None,
        limit: int = 200,
        match: str | None = None,
        newest_first: bool = False,
    ) -> list[FlowRun]:
        """Oldest expected start first (newest first with `newest_first`); `match`: runs named so or whose
        id starts with it."""
        ...

    def set_run_state(
        self,
        run_id: str,
        state: str,
        *,
        message: str | None = None,
        expected: Sequence[str] = (),
        now: datetime,
        actor: str | None = None,
    ) -> FlowRun:
        """Move a run through states.transition(); with `expected`, fail with ConflictError unless the run is
        in one of those states (compare-and-set). Records the change in the run's history, by `actor`, in the
        same transaction."""
        ...

    def read_run_history(self, run_id: str) -> list[RunStateChange]:
        """Every state change of the run, oldest first (claims, late marks and recoveries included)."""
        ...

    def set_run_infrastructure(self, run_id: str, infrastructure_id: str) -> FlowRun:
        """Record what runs the run (pid, container id, namespace/job): shown by `wp flow-run inspect`, and
        what a restarted worker re-attaches to."""
        ...

    def claim_runs(
        self,
        work_pool: str,
        worker: str,
        *,
        limit: int,
        scheduled_before: datetime,
        now: datetime,
        work_queues: Sequence[str] = (),
    ) -> list[FlowRun]:
        """Atomically move up to `limit` due runs to PENDING for `worker`, honouring pool, queue and deployment
        limits and the priority waterfall (SPEC §1). Also records the poll on the queues."""
        ...

    def secret_patterns(self) -> tuple[str, ...]:
        """The key patterns of secret values: the defaults and every pattern an applied project added."""
        ...

    def run_inputs(self, run_id: str, worker: str) -> RunInputs:
        """The run, its deployment and its pool with secrets in clear, for `worker` only while it holds the run
        (PENDING, RUNNING or CANCELLING, claimed by it); ConflictError otherwise. Every other read through the
        HTTP API masks them."""
        ...

    def heartbeat_worker(
        self,
        work_pool: str,
        name: str,
        *,
        interval: float,
        now: datetime,
        host: str | None = None,
        pid: int | None = None,
    ) -> Worker: ...

    def list_workers(self, work_pool: str, now: datetime) -> list[Worker]:
        """The pool's workers by name, with status, host, pid and the runs each holds."""
        ...

    def append_logs(self, lines: Sequence[LogLine]) -> None: ...

    def read_logs(
        self, run_id: str, *, after_seq: int = -1, limit: int = 1000, prefix: str | None = None
    ) -> list[LogLine]:
        """The run's log lines after `after_seq`, in order; with `prefix`, only stdout lines starting with it
        (found by the database, so a run's few summary lines are read without its whole output)."""
        ...

    # ------------------------------------------------------------------ scheduler services (issue 4)
    def insert_scheduled_runs(self, runs: Iterable[FlowRun]) -> int:
        """Insert runs, skipping those whose id or idempotency key exists; returns how many were new."""
        ...

    def delete_scheduled_runs(self, deployment: str, slugs: Sequence[str], after: datetime) -> int:
        """Delete SCHEDULED runs made by these schedules (by slug) of `deployment` ("flow/name") expected
        at or after `after`; for schedules that changed or went away. Returns how many."""
        ...

    def scheduled_run_times(self, deployment: str, *, after: datetime) -> dict[str, set[datetime]]:
        """By schedule slug, the expected start times (≥ after) of runs the scheduler made, any state."""
        ...

    def mark_late_runs(self, now: datetime, threshold_seconds: float = 15.0) -> int:
        """SCHEDULED runs `threshold_seconds` past their expected start become LATE; returns how many."""
        ...

    def recover_dead_workers(self, now: datetime, *, heard_since: datetime | None = None) -> dict[str, int]:
        """Workers silent for 3 heartbeat intervals lose their runs: PENDING → SCHEDULED, RUNNING/CANCELLING →
        CRASHED. Returns counts `workers`, `requeued`, `crashed`. A heartbeat due before `heard_since` (the
        judge's start, the end of a store outage) is not counted as missed."""
        ...

    def count_runs_by_state(self, work_pool: str, work_queue: str | None = None) -> dict[str, int]: ...

    # ------------------------------------------------------------------ continuous sync (SPEC §8)
    def list_sync_status(self) -> list[SyncStatus]: ...

    def get_sync_status(self, key: SyncKey) -> SyncStatus | None: ...

    def save_sync_status(self, status: SyncStatus) -> SyncStatus:
        """Insert or update the record of `status.key`; the control fields (`suspended`, `requested_at`) are
        kept as they are in the store (a new record starts unsuspended)."""
        ...

    def control_sync(
        self, key: SyncKey | None, *, suspend: bool | None = None, request: bool = False, now: datetime
    ) -> list[SyncStatus]:
        """Suspend or resume (`suspend`), and/or ask for an immediate pass (`request`), of the sync `key`, or of
        every sync when `key` is None. NotFoundError when no such record exists. Returns the records changed."""
        ...
