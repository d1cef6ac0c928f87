"""The worker: heartbeat → claim → wait for the expected start → render → start → watch → report.

Owns one worker's loop over a pool (SPEC §5): heartbeats (which drive the worker's, pool's and queues'
statuses), claims with a `prefetch_seconds` look-ahead and at most `limit` runs in hand, the wait until each
run's expected start, rendering the job configuration (pool template + the deployment's job variables read at
submission + the run's), starting it through the executor of the pool's type, forwarding the flow-run
process's reports and output to the store, cancellation (a CANCELLING run's infrastructure is stopped, then
the run is CANCELLED), CRASHED for infrastructure that ends without a final state, and graceful shutdown (stop
claiming, hand back runs not started, let running ones finish; a second stop request kills them). At its start
it checks its pool (served_pool.py) and re-attaches: a worker restarted under the same name follows again the
infrastructure its earlier life started (reattach.py). A process worker pre-warms its pool's Prefect deployments
(prewarm.py) at its start and heartbeats. It rides out a store that is briefly unreachable (a `wp server`
restarting): state changes, log shipping and the reads a submission needs are retried (store_link.py), so no
final state or log line is lost. A run the store took from the worker meanwhile (CRASHED by a server's
dead-worker recovery, handed to another worker) has its infrastructure stopped and is let go, never reported.

Single-threaded: one loop waits on every child's pipes at once, so store calls never race (pre-warming's
background thread never calls the store). The clock is
injected. Must never decide which runs are due or claimable (that is the store's atomic claim).
"""

from __future__ import annotations

import os
import selectors
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from reconciler.errors import NotFoundError, WpError
from reconciler.model import Deployment, FlowRun, LogLine, PoolType, WorkPool
from reconciler.runtime.executor_choice import load_executor
from reconciler.runtime.executors.base import (
    Executor,
    Job,
    Output,
)
from reconciler.runtime.held_run import HeldRun
from reconciler.runtime.prewarm import AHEAD_SECONDS, Prewarmer
from reconciler.runtime.reattach import reattached
from reconciler.runtime.served_pool import served_pool
from reconciler.runtime.store_link import StoreLink
from reconciler.runtime.wake import WakeListener
from reconciler.secret_values import mask_text, run_secret_values, text_masks
from reconciler.states import RunState
from reconciler.store.base import RunInputs, Store

UNLIMITED_CLAIM = 200  # the most one poll asks for when the worker has no --limit


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerOptions:
    pool: str
    name: str | None = None
    queues: tuple[str, ...] = ()
    limit: int | None = None
    type: str | None = None
    prefetch_seconds: float = 10.0
    heartbeat_interval: float = 30.0
    poll_interval: float = 0.5
    cancel_check_interval: float = 1.0
    stop_grace_seconds: float = 5.0  # SIGTERM → SIGKILL when a run is cancelled
    run_once: bool = False
    store_retry_seconds: float = 120.0  # how long a state change or log shipment is retried in an outage


_WAKE = object()  # the selector's data for the wake listener's pipe


class Worker:
    def __init__(
        self,
        store: Store,
        options: WorkerOptions,
        *,
        executor: Executor | None = None,
        now: Callable[[], datetime] = utc_now,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        cwd: str | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.name = options.name or f"{options.type or 'process'}-worker-{uuid.uuid4().hex[:8]}"
        self._executor = executor
        self._now = now
        self._env = dict(os.environ if env is None else env)
        self._out = out or sys.stdout
        self._cwd = cwd or os.getcwd()
        self._active: dict[str, HeldRun] = {}
        self._stop_requests = 0
        self._stop_lock = threading.Lock()
        self._handed_back = False
        self._polled_once = False
        self._link = StoreLink(
            store,
            pool=options.pool,
            name=self.name,
            heartbeat_interval=options.heartbeat_interval,
            retry_seconds=options.store_retry_seconds,
            now=now,
            say=self._say,
            give_up=lambda: self._stop_requests > 1,
        )
        self._retrying = self._link.retrying
        self._next_poll = 0.0
        self._next_cancel_check = 0.0
        self._selector = selectors.DefaultSelector()
        self._wake: WakeListener | None = None
        self._prewarm: Prewarmer | None = None
        self.pool: WorkPool | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        """Check the pool and queues exist and the type matches, pick the executor, send a heartbeat."""
        options = self.options
        pool = served_pool(self.store, options.pool, options.queues, options.type)
        if self._executor is None:
            self._executor = load_executor(pool.type)
        self.pool = pool
        self._link.heartbeat()
        self._listen_for_wakes(pool.name)
        self._say(f"Worker {self.name!r} started on work pool {pool.name!r}.")
        if pool.type == PoolType.PROCESS:
            self._prewarm = Prewarmer(pool, self.name, self._env, self._cwd, self._say)
            self._prewarm_deployments()
        self._reattach_all()

    def _prewarm_deployments(self) -> None:
        """Start the warm Prefect servers of the pool's deployments not seen yet (README "Prefect flows"): at
        start, then with each heartbeat, so no poll pays a store call for it."""
        if self._prewarm is None:
            return
        try:
            deployments = self.store.list_deployments(work_pool=self.options.pool)
        except WpError as exc:  # only a slower first run: the next heartbeat tries again
            self._say(f"could not read the pool's deployments to pre-warm their Prefect: {exc}")
            return
        self._prewarm.see(deployments)

    def _listen_for_wakes(self, pool: str) -> None:
        """Through a server, claim the moment runs may be claimable instead of at the next poll."""
        if not hasattr(self.store, "wait_for_work") or self.options.run_once:
            return
        self._wake = WakeListener(self.store, pool)  # type: ignore[arg-type]  # has wait_for_work
        self._selector.register(self._wake.fd, selectors.EVENT_READ, _WAKE)
        self._wake.start()

    def request_stop(self) -> None:
        """Safe from a signal handler or another thread: the first call stops claiming and hands back runs not
        started while running ones finish; the second also stops running infrastructure (those runs CRASH)."""
        with self._stop_lock:
            self._stop_requests += 1

    @property
    def stopping(self) -> bool:
        return self._stop_requests > 0

    def run(self) -> None:
        """Serve until stopped (or, with run_once, until the runs of one poll are done)."""
        if self.pool is None:
            self.setup()
        try:
            while not self._finished():
                self.tick()
        finally:
            self._flush_logs()
            self._selector.close()
            close = getattr(self._executor, "close", None)
            if close is not None:  # e.g. the docker executor's standby containers
                close()
            if self._wake is not None:
                self._wake.stop()
            self._say(f"Worker {self.name!r} stopped.")

    def _finished(self) -> bool:
        done_claiming = self.stopping or (self.options.run_once and self._polled_once)
        return done_claiming and not self._active

    def tick(self) -> None:
        """One turn of the loop: heartbeat, stop handling, claim, start, cancel, read output, reap."""
        mono = time.monotonic()
        if mono >= self._link.next_heartbeat and self._link.heartbeat():
            self._let_go_of_taken_runs()
            self._prewarm_deployments()
        if self.stopping:
            self._handle_stop()
        elif not (self.options.run_once and self._polled_once) and mono >= self._next_poll:
            self._claim()
        self._start_due()
        if mono >= self._next_cancel_check:
            self._check_cancellations()
        self._pump(self._wait_time())
        self._reap()
        self._flush_logs()

    # ------------------------------------------------------------------------------------------ store calls

    def _claim(self) -> None:
        self._next_poll = time.monotonic() + self.options.poll_interval
        limit = self.options.limit
        free = UNLIMITED_CLAIM if limit is None else limit - len(self._active)
        if free <= 0:
            return
        now = self._now()
        try:
            runs = self.store.claim_runs(
                self.options.pool,
                self.name,
                limit=min(free, UNLIMITED_CLAIM),
                scheduled_before=now + timedelta(seconds=self.options.prefetch_seconds),
                now=now,
                work_queues=self.options.queues,
            )
        except WpError as exc:
            self._link.failed("claiming runs", exc)
            self._next_poll = time.monotonic() + float(
                exc.details.get("retry_after") or self.options.poll_interval
            )
            return
        self._polled_once = True
        for run in runs:
            self._active[run.id] = HeldRun(run)
            self._say(f"claimed {run.name} ({run.id[:8]}) of {run.deployment}")
            ahead = (run.expected_start_time - now).total_seconds()
            if self._prewarm is not None and ahead >= AHEAD_SECONDS:  # its server up again by its start
                self._prewarm.before_run(run.deployment)

    # ------------------------------------------------------------------------------------------ starting

    def _start_due(self) -> None:
        now = self._now()
        for active in list(self._active.values()):
            if active.infra is None and not active.cancelling and active.run.expected_start_time <= now:
                self._submit(active)

    def _submit(self, active: HeldRun) -> None:
        run = active.run
        try:
            inputs: RunInputs | None = self._inputs_of(run)
        except NotFoundError:
            self._link.set_state(run.id, RunState.CANCELLED, f"deployment {run.deployment} no longer exists")
            self._active.pop(run.id, None)
            return
        except WpError:
            inputs = None  # the store stayed unreachable: crash the run below, never the worker
        try:
            if inputs is None:
                raise WpError(f"deployment {run.deployment} could not be read from the store")
            run = active.run = inputs.run  # secrets in clear: a server's other answers mask them
            deployment = inputs.deployment
            secrets = run_secret_values(run, deployment, inputs.work_pool, inputs.secret_patterns)
            active.masks = text_masks(secrets)
            configuration = self._render(run, deployment, inputs.work_pool)
            active.stream_output = bool(configuration.get("stream_output", True))
            assert self._executor is not None
            job = Job(run, deployment, configuration, self._env, self.name, self._cwd)
            active.infra = self._executor.start(job)
        except Exception as exc:  # any failure to submit is the run's CRASH, never the worker's
            message = f"Failed to submit flow run to infrastructure: {type(exc).__name__}: {exc}"
            message = mask_text(message, active.masks)
            self._log(active, "wp", message)
            self._link.set_state(run.id, RunState.CRASHED, message)
            self._active.pop(run.id, None)
            return
        self._watch(active)
        started = f"started {run.name} as {self._executor.type} {active.infra.id}"
        self._log(active, "wp", f"worker {self.name} {started}")
        self._say(started)
        self._record_infrastructure(active)
        handover = getattr(active.infra, "recorded", None)
        if handover is not None:  # a docker standby container gets its run only once the run names it
            handover()

    def _record_infrastructure(self, active: HeldRun) -> None:
        """Store the infrastructure id on the run, again whenever it changes (a container is known by its
        wanted name until the engine has created it)."""
        assert active.infra is not None
        infra_id = active.infra.id
        if infra_id == active.recorded_id:
            return
        if active.recorded_id is not None and self._executor is not None:
            self._log(active, "wp", f"{active.recorded_id} is {self._executor.type} {infra_id}")
        active.recorded_id = infra_id
        run_id = active.run.id
        try:
            self._retrying(
                f"recording the infrastructure of run {run_id}",
                lambda: self.store.set_run_infrastructure(run_id, infra_id),
            )
        except WpError as exc:  # the run goes on; only a re-attach after a restart would miss it
            self._say(f"run {run_id}: could not record its infrastructure id: {exc}")

    def _watch(self, active: HeldRun) -> None:
        assert active.infra is not None
        for fd in active.infra.selectables():
            self._selector.register(fd, selectors.EVENT_READ, active.run.id)

    # ------------------------------------------------------------------------------------------ re-attach

    def _reattach_all(self) -> None:
        """Take back this worker's runs from its earlier life (reattach.py): follow their infrastructure again."""
        assert self._executor is not None
        for active in reattached(self._link, self._executor, skip=self._active):
            assert active.infra is not None
            self._active[active.run.id] = active
            self._watch(active)
            self._log(
                active, "wp", f"worker {self.name} re-attached to {self._executor.type} {active.infra.id}"
            )
            self._say(f"Re-attached to {active.run.name} ({self._executor.type} {active.infra.id}).")

    def _inputs_of(self, run: FlowRun) -> RunInputs:
        # read at submission, so edits to the deployment's job variables reach runs already scheduled; the one
        # read that returns secret values in clear, for the worker holding the run
        return self._retrying(
            f"reading the inputs of run {run.id}", lambda: self.store.run_inputs(run.id, self.name)
        )

    def _render(self, run: FlowRun, deployment: Deployment, pool: WorkPool) -> dict[str, Any]:
        from reconciler.runtime.submission import job_configuration

        return job_configuration(pool, deployment, run, self.name, self._env)

    # ------------------------------------------------------------------------------------------ watching

    def _wait_time(self) -> float:
        """Seconds the loop may sleep: until the next poll, heartbeat, cancel check or start; at most 0.5."""
        mono = time.monotonic()
        deadlines = [self._link.next_heartbeat, self._next_cancel_check]
        if not self.stopping:
            deadlines.append(self._next_poll)
        wait = min(deadlines) - mono
        now = self._now()
        for active in self._active.values():
            if active.infra is None and not active.cancelling:
                wait = min(wait, (active.run.expected_start_time - now).total_seconds())
            elif active.infra is not None and not active.infra.selectables():
                wait = min(wait, 0.05)  # nothing to wait on: poll the infrastructure
        return max(0.0, min(wait, 0.5))

    def _pump(self, timeout: float) -> None:
        if not self._selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            if key.data is _WAKE:
                self._wake.drain()  # type: ignore[union-attr]  # registered only with a listener
                self._next_poll = 0.0
                continue
            active = self._active.get(key.data)
            if active is not None:
                self._consume(active)

    def _consume(self, active: HeldRun) -> None:
        assert active.infra is not None
        for event in active.infra.read_events():
            if isinstance(event, Output):
                if active.shipped is not None and active.shipped.covers(event.text, event.timestamp):
                    continue
                self._log(active, event.stream, event.text, event.timestamp)
                if active.stream_output:
                    print(event.text, file=self._out, flush=True)
            elif event.state == RunState.RUNNING:
                if not active.running_reported:
                    active.running_reported = True
                    if not self._link.set_state(active.run.id, RunState.RUNNING, expected=[RunState.PENDING]):
                        self._let_go_of_taken_runs()  # refused: the store may have given the run away
            else:
                active.reported = event
        self._record_infrastructure(active)
        self._unregister_closed(active)

    def _unregister_closed(self, active: HeldRun) -> None:
        assert active.infra is not None
        open_fds = set(active.infra.selectables())
        for fd, key in list(self._selector.get_map().items()):
            if key.data == active.run.id and fd not in open_fds:
                self._selector.unregister(fd)

    def _reap(self) -> None:
        for active in list(self._active.values()):
            if active.infra is None:
                continue
            code = active.infra.exit_code()
            if code is None:
                continue
            self._consume(active)  # whatever is left in the pipes
            self._finish(active, code)

    def _finish(self, active: HeldRun, code: int) -> None:
        assert active.infra is not None
        for fd, key in list(self._selector.get_map().items()):
            if key.data == active.run.id:
                self._selector.unregister(fd)
        close = getattr(active.infra, "close", None)
        if close is not None:
            close()
        self._active.pop(active.run.id, None)
        self._flush_run_logs(active)
        if active.taken is not None:
            self._say(f"{active.run.name}: its {self._type} {active.infra.id} is stopped ({active.taken})")
            return
        state, message = active.final_state(code, self.name)
        message = mask_text(message, active.masks) if message else message
        if state is RunState.COMPLETED and not active.running_reported:
            # a custom command that exits 0 reports nothing: pass through RUNNING as the state table requires
            self._link.set_state(active.run.id, RunState.RUNNING, expected=[RunState.PENDING])
        self._link.set_state(active.run.id, state, message)
        self._say(f"{active.run.name} finished {state.value}" + (f": {message}" if message else ""))

    # ------------------------------------------------------------------------------------------ cancel, stop

    def _check_cancellations(self) -> None:
        self._next_cancel_check = time.monotonic() + self.options.cancel_check_interval
        if not self._active:
            return
        try:
            cancelling = self.store.list_flow_runs(
                states=[RunState.CANCELLING.value], work_pool=self.options.pool, limit=1000
            )
        except WpError as exc:
            self._link.failed("checking for cancellations", exc)
            return
        for run in cancelling:
            active = self._active.get(run.id)
            if active is None or active.cancelling or active.taken is not None:
                continue
            active.cancelling = True
            if active.infra is None:
                self._link.set_state(run.id, RunState.CANCELLED, "cancelled before it started")
                self._active.pop(run.id, None)
            else:
                self._log(active, "wp", f"cancelling: stopping {active.infra.id}")
                active.infra.stop(self.options.stop_grace_seconds)

    def _let_go_of_taken_runs(self) -> None:
        """Stop the infrastructure of every run in hand that the store no longer gives this worker (a server
        judged it dead, another worker holds the run): that slot is free in the store, so it must be free in
        fact. The run's state is the store's; the worker reports nothing more for it."""
        held = [run_id for run_id, active in self._active.items() if active.taken is None]
        for run_id, why in self._link.taken(held).items():
            active = self._active[run_id]
            active.taken = why
            what = f"{self._type} {active.infra.id}" if active.infra is not None else "nothing started yet"
            message = f"worker {self.name} no longer holds this run ({why}); stopping {what}"
            self._log(active, "wp", message)
            self._say(f"{active.run.name}: {message}")
            if active.infra is None:
                self._active.pop(run_id, None)
                self._flush_run_logs(active)
            else:
                active.infra.stop(self.options.stop_grace_seconds)

    @property
    def _type(self) -> str:
        return self._executor.type if self._executor is not None else "infrastructure"

    def _handle_stop(self) -> None:
        if not self._handed_back:
            self._handed_back = True
            for active in list(self._active.values()):
                if active.infra is None and not active.cancelling:
                    message = f"handed back: worker {self.name} stopped before starting it"
                    self._link.set_state(
                        active.run.id, RunState.SCHEDULED, message, expected=[RunState.PENDING]
                    )
                    self._active.pop(active.run.id, None)
            if self._active:
                self._say(f"Stopping: waiting for {len(self._active)} running flow run(s) to finish.")
        if self._stop_requests > 1:
            for active in self._active.values():
                if active.infra is not None and not (active.aborted or active.cancelling or active.taken):
                    active.aborted = True
                    active.infra.stop(self.options.stop_grace_seconds)

    # ------------------------------------------------------------------------------------------ logs

    def _log(self, active: HeldRun, stream: str, text: str, at: datetime | None = None) -> None:
        # a line dated by the infrastructure keeps that date: a re-attaching worker compares it with the engine's
        active.log(stream, text, at or self._now())

    def _flush_logs(self) -> None:
        lines: list[LogLine] = []
        for active in self._active.values():
            lines.extend(active.log_buffer)
            active.log_buffer.clear()
        self._link.ship_logs(lines)

    def _flush_run_logs(self, active: HeldRun) -> None:
        self._link.ship_logs(active.log_buffer)
        active.log_buffer = []

    def _say(self, message: str) -> None:
        print(message, file=self._out, flush=True)
