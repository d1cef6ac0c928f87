"""Re-attach: a worker restarted under the same name takes back the runs its earlier life held (SPEC §5).

Owns finding those runs (PENDING, RUNNING or CANCELLING runs of the pool held by the worker's name: within the
dead-worker window the store has not recovered them), following their infrastructure again through the
executor, and what becomes of a run whose infrastructure is gone: claimed but never started, it is handed back
(SCHEDULED); otherwise it CRASHES. A run followed again gets its secret values (to mask its logs) and learns
which of its output was shipped and how its log lines are numbered, so no line is shipped twice.

Must never follow a run of another worker; state changes go through the worker's StoreLink.
"""

from __future__ import annotations

from collections.abc import Container, Iterator

from reconciler.errors import WpError
from reconciler.model import FlowRun, LogLine
from reconciler.runtime.executors.base import Executor
from reconciler.runtime.held_run import HeldRun
from reconciler.runtime.shipped import ShippedOutput
from reconciler.runtime.store_link import StoreLink
from reconciler.secret_values import run_secret_values, text_masks
from reconciler.states import RunState

HELD_STATES = (RunState.PENDING.value, RunState.RUNNING.value, RunState.CANCELLING.value)


def reattached(link: StoreLink, executor: Executor, skip: Container[str]) -> Iterator[HeldRun]:
    """The runs of the worker's earlier life it follows again, one by one (`skip`: run ids already in hand,
    looked up as each run comes); those it cannot follow are handed back or CRASHED on the way."""
    try:
        held = link.store.list_flow_runs(states=HELD_STATES, work_pool=link.pool, limit=10_000)
    except WpError as exc:
        link.say(f"could not look for runs to re-attach to: {exc}")
        return
    for run in held:
        if run.worker == link.name and run.id not in skip:
            active = _reattach(link, executor, run)
            if active is not None:
                yield active


def _reattach(link: StoreLink, executor: Executor, run: FlowRun) -> HeldRun | None:
    name = link.name
    try:
        # no id recorded: the earlier life may have died between starting and recording it, so the
        # executor still looks (by the run's labels); "" tells it there is no id to try first
        infra = executor.reattach(run, run.infrastructure_id or "")
    except Exception as exc:  # an engine error must not keep the worker from starting
        link.say(f"run {run.id}: could not re-attach to {run.infrastructure_id}: {exc}")
        infra = None
    if infra is None and not run.infrastructure_id:
        if run.state == RunState.PENDING:  # claimed but never started: let any worker have it
            message = f"handed back: worker {name} restarted before starting it"
            link.set_state(run.id, RunState.SCHEDULED, message, expected=[RunState.PENDING])
        else:
            link.set_state(run.id, RunState.CRASHED, f"worker {name} restarted and lost it")
        return None
    if infra is None:
        message = (
            f"worker {name} restarted and could not follow its {executor.type} {run.infrastructure_id} again"
        )
        link.set_state(run.id, RunState.CRASHED, message)
        return None
    active = HeldRun(
        run,
        infra=infra,
        running_reported=run.state != RunState.PENDING,
        recorded_id=run.infrastructure_id,
    )
    try:
        inputs = link.store.run_inputs(run.id, name)
        secrets = run_secret_values(inputs.run, inputs.deployment, inputs.work_pool, inputs.secret_patterns)
        active.masks = text_masks(secrets)
    except WpError as exc:  # the server masks what it knows again
        link.say(f"run {run.id}: could not read its secret values to mask them in its logs: {exc}")
    _resume_logs(link, active)
    return active


def _resume_logs(link: StoreLink, active: HeldRun) -> None:
    """Continue the run's log numbering and learn which of its output was shipped."""
    lines: list[LogLine] = []
    while True:
        try:
            batch = link.store.read_logs(active.run.id, after_seq=lines[-1].seq if lines else -1)
        except WpError as exc:
            link.say(f"run {active.run.id}: could not read its logs, lines may repeat: {exc}")
            break
        if not batch:
            break
        lines.extend(batch)
    active.shipped = ShippedOutput.from_lines(lines)
    active.seq = active.shipped.next_seq
