"""Flow-run states and the transitions between them.

`transition()` is pure and is the only way a run's state changes: every edge (store, API, worker, scheduler)
asks it first. Must never do I/O.
"""

from __future__ import annotations

from enum import StrEnum

from reconciler.errors import InvalidTransitionError


class RunState(StrEnum):
    SCHEDULED = "SCHEDULED"
    LATE = "LATE"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def holds_slot(self) -> bool:
        """States that count against pool, queue and deployment concurrency limits."""
        return self in SLOT_STATES

    @property
    def is_claimable(self) -> bool:
        return self in (RunState.SCHEDULED, RunState.LATE)


FINAL_STATES = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED})
SLOT_STATES = frozenset({RunState.PENDING, RunState.RUNNING, RunState.CANCELLING})

S = RunState
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.SCHEDULED: frozenset({S.LATE, S.PENDING, S.CANCELLED, S.SCHEDULED}),
    S.LATE: frozenset({S.PENDING, S.CANCELLED, S.SCHEDULED}),
    # PENDING -> SCHEDULED: a dead or stopping worker hands its claim back.
    S.PENDING: frozenset({S.RUNNING, S.SCHEDULED, S.CANCELLING, S.CANCELLED, S.FAILED, S.CRASHED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLING, S.CANCELLED, S.CRASHED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.CRASHED, S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.CRASHED: frozenset(),
}
del S


def can_transition(current: RunState, target: RunState) -> bool:
    return target in TRANSITIONS[current]


def transition(current: RunState, target: RunState) -> RunState:
    """Return `target` if a run in `current` may move there, else raise InvalidTransitionError."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        raise InvalidTransitionError(f"a run in {current} cannot become {target}; allowed: {allowed}")
    return target
