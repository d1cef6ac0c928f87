"""The worker's link to the store: heartbeats, store calls retried through an outage, and ownership.

Owns what keeps a worker and the store agreeing on who holds which run:
- heartbeats on the worker's interval (sooner again after a failed one), also sent before a store call made
  once an interval has passed in a long turn of the loop (many runs started at once, a slow store: the server
  must not judge a busy worker dead), and while a store call is being retried, so the end of an outage is
  heard at once and not after a long backoff;
- `retrying`: a call retried with backoff while the store is unreachable (`details["retryable"]`: a wp server
  restarting, or a server answering 503 for a database that is briefly gone, whose `Retry-After` is honoured);
- `set_state` and `ship_logs`: the worker's state changes and log lines, retried so that none is lost, and a
  refusal reported instead of raised;
- `taken`: which runs in the worker's hands the store no longer gives it (CRASHED by a server's dead-worker
  recovery, handed to another worker, ended), so the worker stops their infrastructure and the freed slot is
  really free.
Must never decide a run's state: the store has the last word, the worker only stops what it no longer holds.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TypeVar

from reconciler.errors import ConflictError, InvalidTransitionError, NotFoundError, WpError
from reconciler.model import FlowRun, LogLine
from reconciler.states import SLOT_STATES, RunState
from reconciler.store.base import Store

RETRY_FIRST_DELAY = 0.25  # seconds before the first retry of a store call while the server is unreachable
RETRY_MAX_DELAY = 5.0
OWNERSHIP_PAGE = 10_000  # slot holders read per ownership check; a fuller pool is judged only on what it read

T = TypeVar("T")


class StoreLink:
    """One worker's heartbeats and retried calls to `store`; `say` prints a line to the worker's output."""

    def __init__(
        self,
        store: Store,
        *,
        pool: str,
        name: str,
        heartbeat_interval: float,
        retry_seconds: float,
        now: Callable[[], datetime],
        say: Callable[[str], None],
        give_up: Callable[[], bool],
    ) -> None:
        self.store = store
        self.pool = pool
        self.name = name
        self.actor = f"worker {name}"  # in the history of each run it changes
        self.heartbeat_interval = heartbeat_interval
        self.retry_seconds = retry_seconds
        self._now = now
        self.say = say
        self._give_up = give_up  # a second stop request: stop retrying
        self.next_heartbeat = 0.0
        self._next_keep_alive = 0.0

    def heartbeat(self) -> bool:
        """Send a heartbeat; a failure is reported and the next one comes sooner. True if it was stored."""
        self.next_heartbeat = self._next_keep_alive = time.monotonic() + self.heartbeat_interval
        if self._send():
            return True
        self.next_heartbeat = time.monotonic() + min(5.0, self.heartbeat_interval)
        return False

    def keep_alive(self) -> None:
        """A heartbeat in the middle of a turn of the worker's loop, once an interval has passed since the last
        one. The loop checks for heartbeats only between turns, and one turn may start many runs (each a few
        store calls and a process) or meet a slow store: without this, 3 intervals of such work and the server
        judges a live worker dead and crashes its runs. The loop's own heartbeat stays due, so what the loop
        does after one (letting go of runs taken from it) still happens at its next turn."""
        mono = time.monotonic()
        if mono < max(self.next_heartbeat, self._next_keep_alive):
            return
        self._next_keep_alive = mono + self.heartbeat_interval
        self._send()

    def _send(self) -> bool:
        try:
            self.store.heartbeat_worker(
                self.pool,
                self.name,
                interval=self.heartbeat_interval,
                now=self._now(),
                host=socket.gethostname(),
                pid=os.getpid(),
            )
        except WpError as exc:  # a flaky store must not kill the runs in hand
            self.failed("heartbeat", exc)
            return False
        return True

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, retried with backoff while the store is unreachable for up to `retry_seconds`; any other
        error, or the last one, is raised. Heartbeats due meanwhile are sent before each attempt."""
        delay = RETRY_FIRST_DELAY
        deadline = time.monotonic() + self.retry_seconds
        while True:
            self.keep_alive()
            try:
                return call()
            except WpError as exc:
                wait = max(delay, float(exc.details.get("retry_after") or 0))
                out_of_time = time.monotonic() + wait > deadline
                if not exc.details.get("retryable") or out_of_time or self._give_up():
                    raise
                self.say(f"server unreachable, retrying {what} in {wait:g} s: {exc.message}")
            # never sleep past a heartbeat: the server must hear the worker as soon as it is back
            wake = time.monotonic() + wait
            while (left := wake - time.monotonic()) > 0:
                time.sleep(max(0.0, min(left, self.next_heartbeat - time.monotonic())))
                if time.monotonic() >= self.next_heartbeat:
                    self.heartbeat()
            delay = min(delay * 2, RETRY_MAX_DELAY)

    def set_state(
        self, run_id: str, state: RunState, message: str | None = None, *, expected: Sequence[str] = ()
    ) -> bool:
        """Change the run's state, retried through an outage; a refusal is reported. True if it was stored."""
        now = self._now()
        try:
            self.retrying(
                f"{state.value} of run {run_id}",
                lambda: self.store.set_run_state(
                    run_id, state.value, message=message, expected=expected, now=now, actor=self.actor
                ),
            )
            return True
        except (ConflictError, InvalidTransitionError, NotFoundError) as exc:
            self.say(f"run {run_id}: could not set {state.value}: {exc}")
            return False
        except WpError as exc:
            self.say(f"run {run_id}: the store refused {state.value}: {exc}")
            return False

    def ship_logs(self, lines: list[LogLine]) -> None:
        """Store the log lines, retried through an outage; a failure is reported."""
        if not lines:
            return
        try:
            self.retrying(f"shipping {len(lines)} log line(s)", lambda: self.store.append_logs(lines))
        except WpError as exc:
            self.say(f"shipping {len(lines)} log line(s) failed: {exc}")

    def failed(self, what: str, exc: WpError) -> None:
        """A periodic call (heartbeat, poll) failed; it is simply made again at its next turn."""
        if exc.details.get("retryable"):
            self.say(f"server unreachable, retrying {what} at its next turn: {exc.message}")
        else:
            self.say(f"{what} failed: {exc}")

    def taken(self, held: Collection[str]) -> dict[str, str]:
        """Of the run ids `held` in the worker's hands, those the store no longer gives this worker, each with
        why (the run's state and message, or the worker now holding it). Empty when the store cannot say."""
        if not held:
            return {}
        slot = [s.value for s in SLOT_STATES]
        try:
            runs = self.store.list_flow_runs(states=slot, work_pool=self.pool, limit=OWNERSHIP_PAGE)
        except WpError as exc:
            self.failed("checking which runs are still this worker's", exc)
            return {}
        by_id = {r.id: r for r in runs}
        taken: dict[str, str] = {}
        for run_id in held:
            run = by_id.get(run_id)
            why = self._not_ours(run) if run is not None else self._why_gone(run_id)
            if why is not None:
                taken[run_id] = why
        return taken

    def _not_ours(self, run: FlowRun) -> str | None:
        if run.state not in {s.value for s in SLOT_STATES}:
            return f"it is {run.state}" + (f": {run.state_message}" if run.state_message else "")
        if run.worker not in (None, self.name):
            return f"worker {run.worker} holds it now"
        return None

    def _why_gone(self, run_id: str) -> str | None:
        """A run missing from the page of slot holders: read it alone (a full page proves nothing)."""
        try:
            run = self.store.get_flow_run(run_id)
        except NotFoundError:
            return "the store no longer has it"
        except WpError as exc:
            self.failed(f"checking run {run_id}", exc)
            return None
        return self._not_ours(run)
