"""A run in a worker's hands: its infrastructure, what the flow-run process reported, its log buffer, and the
final state its end means.

Owns `HeldRun`, the worker's record of one claimed run (waiting for its start, running, being cancelled, stopped
by the worker, or taken from it by the store), and `final_state`, the rule that turns how the infrastructure
ended into the run's final state. Must never call the store: the worker does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reconciler.model import FlowRun, LogLine
from reconciler.runtime.executors.base import Infrastructure, StateReport
from reconciler.runtime.shipped import ShippedOutput
from reconciler.secret_values import mask_text
from reconciler.states import FINAL_STATES, RunState


@dataclass
class HeldRun:
    """A claimed run in the worker's hands: waiting for its start, or running."""

    run: FlowRun
    infra: Infrastructure | None = None
    stream_output: bool = True
    reported: StateReport | None = None  # the final state the flow-run process reported
    running_reported: bool = False
    cancelling: bool = False
    aborted: bool = False
    taken: str | None = None  # why the store no longer gives this run to the worker: stopped, not reported
    seq: int = 0
    log_buffer: list[LogLine] = field(default_factory=list)
    recorded_id: str | None = None  # the infrastructure id stored on the run
    shipped: ShippedOutput | None = None  # after a re-attach: the output the worker's earlier life shipped
    masks: tuple[str, ...] = ()  # the run's secret values as printed: masked in its logs and state message

    def log(self, stream: str, text: str, at: datetime) -> None:
        """Buffer one log line, its secret values masked, numbered after the last (the store renumbers)."""
        self.log_buffer.append(
            LogLine(
                run_id=self.run.id,
                timestamp=at,
                stream=stream,
                message=mask_text(text, self.masks),
                seq=self.seq,
            )
        )
        self.seq += 1

    def final_state(self, code: int, worker: str) -> tuple[RunState, str | None]:
        """The run's final state and message once its infrastructure ended with exit `code`."""
        if self.cancelling:
            return RunState.CANCELLED, "cancelled: the worker stopped its infrastructure"
        if self.aborted:
            return RunState.CRASHED, f"the worker {worker} was stopped and killed the flow-run process"
        reported = self.reported.state if self.reported is not None else None
        if reported in {s.value for s in FINAL_STATES}:
            return RunState(reported), self.reported.message if self.reported else None
        if code == 0 and not self.running_reported:
            return RunState.COMPLETED, None
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return RunState.CRASHED, f"the flow-run process {how} without reporting a final state"
