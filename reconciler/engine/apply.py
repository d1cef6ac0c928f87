"""Apply: lock, stale check, one store transaction, history record.

Owns the guarded write of a plan, taking the lease lock (over from a holder that provably died: same host,
process gone; see store/holder.py) and the reading-back of a saved plan file (whose secrets are masked, so they
are re-read from the configuration the plan was made from). Never renders; never decides what changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from reconciler.collector import collector_paused
from reconciler.engine.plan import Action, Plan, change_to_json, reviewed_hash
from reconciler.errors import LockHeldError, NotFoundError, StalePlanError
from reconciler.gitops.repo import RepoFacts
from reconciler.model import SENSITIVE_MASK, canonical_json
from reconciler.store.base import ApplyProgress, ApplyRecord, LockInfo, Store
from reconciler.store.holder import gone, this_process


def take_lock(
    store: Store,
    holder: str,
    operation: str,
    *,
    timeout: float = 0.0,
    notice: Callable[[str], None] | None = None,
) -> LockInfo:
    """The lease lock, recorded with this process. A lease whose holder is provably gone (it ran on this host
    and its process no longer exists) is taken over at once, and `notice` is told whose it was; a live holder,
    or one on another host, is waited for up to `timeout` seconds as usual."""
    me = this_process()
    try:
        return store.acquire_lock(holder, operation, process=me)
    except LockHeldError:
        current = store.current_lock()
        process = current.process if current is not None else None
        if current is not None and process is not None and gone(process):
            try:
                store.force_unlock(current.id)  # only that lease: a newer one is left alone (NotFoundError)
            except NotFoundError:
                pass
            else:
                if notice is not None:
                    notice(
                        f"took over the lock {current.id} of {current.holder} ({current.operation}, "
                        f"{process.describe()}): that process is gone"
                    )
    return store.acquire_lock(holder, operation, timeout=timeout, process=me)


@collector_paused()  # the plan hash and the rows of a large apply are acyclic; see reconciler.collector
def apply_plan(
    store: Store,
    plan: Plan,
    *,
    actor: str,
    repo: RepoFacts | None = None,
    lock_timeout: float = 0.0,
    lock_id: str | None = None,
    progress: ApplyProgress | None = None,
    base_revision: int | None = None,
    notice: Callable[[str], None] | None = None,
) -> ApplyRecord:
    """Write `plan` under the lease lock; the store checks staleness and writes in one transaction.

    With `lock_id`, the caller already holds the lease (the sync loop takes it before planning again) and
    keeps it; else the lease is taken for this write and released after it. `base_revision`: the store
    revision the plan was made at; the returned record's `revision` is then set if nothing else wrote since."""
    record = ApplyRecord(
        project=plan.project,
        actor=actor,
        summary={"add": plan.summary.add, "change": plan.summary.change, "destroy": plan.summary.destroy},
        git_commit=repo.commit if repo else None,
        git_branch=repo.branch if repo else None,
        git_dirty=repo.dirty if repo else None,
        git_author=repo.author if repo else None,
        git_message=repo.message if repo else None,
        plan_hash=reviewed_hash(plan),
        addresses=tuple(c.address for c in plan.actionable),
        base_revision=base_revision,
    )
    if lock_id is not None:
        return store.apply(plan, record, lock_id=lock_id, progress=progress)
    lock = take_lock(store, actor, f"apply {plan.project}", timeout=lock_timeout, notice=notice)
    try:
        return store.apply(plan, record, lock_id=lock.id, progress=progress)
    finally:
        store.release_lock(lock.id)


def contains_masked(value: Any) -> bool:
    if value == SENSITIVE_MASK:
        return True
    if isinstance(value, dict):
        return any(contains_masked(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_masked(v) for v in value)
    return False


def _reviewed_form(plan: Plan) -> list[str]:
    return [
        canonical_json({k: v for k, v in change_to_json(c, plan.secret_patterns).items() if k != "notes"})
        for c in plan.changes
        if c.action is not Action.NOOP
    ]


def resolve_saved_plan(saved: Plan, replan: Callable[[Plan], Plan]) -> Plan:
    """The plan to write for a saved plan file.

    A saved plan holds secrets masked. If it has any, the configuration it was made from is planned again
    (`replan(saved)`); that fresh plan must show exactly what the saved one showed, else the plan is stale.
    The saved fingerprints are kept, so the store still refuses objects changed since the plan was made.
    """
    masked = any(contains_masked(c.after) for c in saved.changes)
    if not masked:
        return saved
    fresh = replan(saved)
    if _reviewed_form(fresh) != _reviewed_form(saved):
        changed = sorted(
            {c.address for c in fresh.actionable} ^ {c.address for c in saved.actionable}
        ) or sorted(c.address for c in saved.actionable)
        raise StalePlanError(
            "the saved plan no longer matches the configuration and live state "
            f"({', '.join(changed[:5])}); run `wp plan` again",
            addresses=changed,
        )
    return replace(fresh, fingerprints=saved.fingerprints)


def load_plan_file(text: str) -> Plan:
    from reconciler.engine.plan import plan_from_json

    return plan_from_json(json.loads(text))
