"""The scheduler: keeps each active schedule's next runs created, marks late runs, frees dead workers' claims.

Owns the scheduling horizon (at least 3 runs and 1 h ahead, at most 100 runs and 100 days), the readable run
names (`adjective-animal`), the idempotency key of a scheduled run, and the loop that `wp server start` and
`wp scheduler` run. `due_runs` is pure: the clock comes in as `now`; only `Scheduler` talks to a store.

Must never decide delivery (that is the store's atomic claim) nor delete runs (the engine's apply asks the
store to delete the runs of changed or removed schedules).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from reconciler.errors import WpError
from reconciler.model import DEFAULT_QUEUE, Deployment, FlowRun, Schedule
from reconciler.schedules import next_times
from reconciler.states import RunState

log = logging.getLogger(__name__)

MIN_RUNS = 3
MIN_AHEAD = timedelta(hours=1)
MAX_RUNS = 100
MAX_AHEAD = timedelta(days=100)
LATE_AFTER_SECONDS = 15.0

# A fixed namespace so a scheduled run's id follows from its idempotency key: re-generating the same run
# (another tick, another scheduler process) yields the same id and name: `due_runs` stays pure and repeatable.
RUN_ID_NAMESPACE = uuid.UUID("5f0c7a52-9d1e-4c43-8f0e-0b6f2f6a4e11")

ADJECTIVES: tuple[str, ...] = (
    "amber", "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "icy", "jolly",
    "keen", "lively", "mellow", "nimble", "olive", "proud", "quick", "rustic", "sunny", "tidy",
    "upbeat", "vivid", "witty", "young", "zesty", "bold", "cosmic", "dusty", "electric", "fuzzy",
    "golden", "hidden", "ivory", "jade", "kind", "lunar", "misty", "noble", "orange", "polar",
    "quiet", "rapid", "silver", "tawny", "urban", "velvet", "wild", "xenial", "yellow", "zealous",
)  # fmt: skip
ANIMALS: tuple[str, ...] = (
    "aardvark", "badger", "camel", "dingo", "eagle", "falcon", "gecko", "heron", "ibis", "jackal",
    "koala", "lemur", "marmot", "newt", "otter", "panda", "quail", "raven", "salmon", "tapir",
    "urchin", "vulture", "walrus", "yak", "zebra", "bison", "cobra", "dolphin", "ermine", "ferret",
    "gibbon", "hare", "iguana", "jaguar", "kestrel", "llama", "moose", "narwhal", "ocelot", "puffin",
    "quokka", "reindeer", "seal", "toucan", "unicorn", "viper", "wombat", "xerus", "yabby", "zorilla",
)  # fmt: skip


def run_name(run_id: str) -> str:
    """A readable `adjective-animal` name, the same for the same run id."""
    digest = hashlib.sha256(run_id.encode()).digest()
    adjective = ADJECTIVES[int.from_bytes(digest[:4], "big") % len(ADJECTIVES)]
    animal = ANIMALS[int.from_bytes(digest[4:8], "big") % len(ANIMALS)]
    return f"{adjective}-{animal}"


def idempotency_key(deployment: Deployment, slug: str, when: datetime) -> str:
    """What makes a scheduled run unique: one deployment, schedule and time never give two runs."""
    return f"{deployment.flow}/{deployment.name}#{slug}@{when.astimezone(UTC).isoformat()}"


def horizon_times(times: Iterable[datetime], now: datetime) -> list[datetime]:
    """Cut an ascending series of times to the horizon: stop once there are 3 and the last is ≥ 1 h ahead."""
    kept: list[datetime] = []
    for when in times:
        kept.append(when)
        if len(kept) >= MIN_RUNS and when >= now + MIN_AHEAD:
            break
    return kept[:MAX_RUNS]


def due_runs(
    deployment: Deployment, schedule: Schedule, existing: Collection[datetime], now: datetime
) -> list[FlowRun]:
    """The runs `schedule` should have from `now` on that are not among `existing` (expected start times).

    `deployment.work_pool` must be resolved (the caller substitutes the store's default pool). Past times are
    never generated: there is no catch-up. Times are aware UTC datetimes.
    """
    if deployment.work_pool is None:
        raise ValueError(
            f"deployment {deployment.flow}/{deployment.name} has no work pool; resolve the default first"
        )
    if deployment.paused or not schedule.active:
        return []
    now = now.astimezone(UTC)
    have = {t.astimezone(UTC) for t in existing}
    times = horizon_times(next_times(schedule, now, now + MAX_AHEAD, limit=MAX_RUNS), now)
    return [
        _scheduled_run(deployment, schedule, when.astimezone(UTC), now) for when in times if when not in have
    ]


def manual_run(
    deployment: Deployment,
    pool: str,
    *,
    parameters: dict[str, Any],
    job_variables: dict[str, Any],
    created: datetime,
    expected_start_time: datetime,
) -> FlowRun:
    """A run asked for by hand (`wp deployment run`, the web UI's trigger): a fresh id, the deployment's
    parameters overridden by `parameters`, in `pool` (the deployment's or the default pool)."""
    run_id = str(uuid.uuid4())
    return FlowRun(
        id=run_id,
        name=run_name(run_id),
        flow=deployment.flow,
        deployment=f"{deployment.flow}/{deployment.name}",
        work_pool=pool,
        work_queue=deployment.work_queue or DEFAULT_QUEUE,
        state=RunState.SCHEDULED.value,
        expected_start_time=expected_start_time,
        created=created,
        parameters={**deployment.parameters, **parameters},
        job_variables=job_variables,
    )


def _scheduled_run(deployment: Deployment, schedule: Schedule, when: datetime, now: datetime) -> FlowRun:
    key = idempotency_key(deployment, schedule.slug, when)
    run_id = str(uuid.uuid5(RUN_ID_NAMESPACE, key))
    return FlowRun(
        id=run_id,
        name=run_name(run_id),
        flow=deployment.flow,
        deployment=f"{deployment.flow}/{deployment.name}",
        work_pool=deployment.work_pool or "",
        work_queue=deployment.work_queue or DEFAULT_QUEUE,
        state=RunState.SCHEDULED.value,
        state_message="Flow run scheduled",
        expected_start_time=when,
        created=now,
        # parameters are fixed when a run is created; a schedule's own parameters win over the deployment's
        parameters={**deployment.parameters, **schedule.parameters},
        schedule_slug=schedule.slug,
        idempotency_key=key,
    )


class SchedulerStore(Protocol):
    """The part of the Store the scheduler needs."""

    def list_deployments(self, work_pool: str | None = None) -> list[Deployment]: ...

    def get_default_work_pool(self) -> str | None: ...

    def scheduled_run_times(self, deployment: str, *, after: datetime) -> dict[str, set[datetime]]: ...

    def insert_scheduled_runs(self, runs: Iterable[FlowRun]) -> int: ...

    def mark_late_runs(self, now: datetime, threshold_seconds: float = LATE_AFTER_SECONDS) -> int: ...

    def recover_dead_workers(
        self, now: datetime, *, heard_since: datetime | None = None
    ) -> dict[str, int]: ...


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    created: int = 0
    late: int = 0
    requeued: int = 0  # PENDING runs of dead workers handed back
    crashed: int = 0  # RUNNING / CANCELLING runs of dead workers marked CRASHED
    skipped: tuple[str, ...] = ()  # deployments that could not be scheduled, with the reason


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs `tick(now)` against a store; `run_forever` repeats it until a stop event is set."""

    def __init__(self, store: SchedulerStore, *, late_after_seconds: float = LATE_AFTER_SECONDS) -> None:
        self.store = store
        self.late_after_seconds = late_after_seconds
        # Since when this scheduler could have heard heartbeats: set by `run_forever` as it starts and after
        # the store was unreachable. A worker is judged dead only on 3 intervals heard in full, so a server
        # that was down (or whose database was) never crashes the healthy runs of workers it could not hear.
        self.heard_since: datetime | None = None

    def store_unreachable(self, at: datetime) -> None:
        """The store could not be reached at `at` (e.g. a heartbeat answered 503): listen anew from then.
        Safe from another thread: one attribute is replaced."""
        if self.heard_since is None or at > self.heard_since:
            self.heard_since = at

    def tick(self, now: datetime) -> TickReport:
        created, skipped = self.schedule_runs(now)
        late = self.store.mark_late_runs(now, self.late_after_seconds)
        recovered = self.store.recover_dead_workers(now, heard_since=self.heard_since)
        return TickReport(
            created=created,
            late=late,
            requeued=recovered.get("requeued", 0),
            crashed=recovered.get("crashed", 0),
            skipped=tuple(skipped),
        )

    def schedule_runs(self, now: datetime) -> tuple[int, list[str]]:
        """Insert the missing runs of every active schedule of every non-paused deployment."""
        default_pool = self.store.get_default_work_pool()
        created, skipped = 0, []
        for deployment in self.store.list_deployments():
            if deployment.paused or not any(s.active for s in deployment.schedules):
                continue
            if deployment.work_pool is None and default_pool is None:
                skipped.append(
                    f"{deployment.flow}/{deployment.name}: no work pool and no default pool is set"
                )
                continue
            if deployment.work_pool is None:
                deployment = deployment.model_copy(update={"work_pool": default_pool})
            try:
                created += self._schedule_deployment(deployment, now)
            except (WpError, ValueError) as exc:  # one bad schedule must not stop the others
                skipped.append(f"{deployment.flow}/{deployment.name}: {exc}")
        for reason in skipped:
            log.warning("not scheduling %s", reason)
        return created, skipped

    def _schedule_deployment(self, deployment: Deployment, now: datetime) -> int:
        existing = self.store.scheduled_run_times(f"{deployment.flow}/{deployment.name}", after=now)
        runs: list[FlowRun] = []
        for schedule in deployment.schedules:
            runs.extend(due_runs(deployment, schedule, existing.get(schedule.slug, set()), now))
        return self.store.insert_scheduled_runs(runs) if runs else 0

    def run_forever(
        self, stop_event: threading.Event, interval: float = 5.0, clock: Callable[[], datetime] = utc_now
    ) -> None:
        """Tick every `interval` seconds until `stop_event` is set; a failing tick is logged, not fatal. The
        loop listens for heartbeats from its first tick, and anew after a tick the store failed."""
        listening = False
        while not stop_event.is_set():
            now = clock()
            if not listening:
                self.store_unreachable(now)
                listening = True
            try:
                report = self.tick(now)
                if report.created or report.late or report.requeued or report.crashed:
                    log.info("scheduler tick: %s", report)
            except WpError as exc:
                log.error("scheduler tick failed: %s", exc)
                listening = False
            except Exception:  # the server must keep scheduling after a transient database error
                log.exception("scheduler tick failed")
                listening = False
            stop_event.wait(interval)
