"""The continuous sync loop (SPEC §8): fetch → the one pipeline → apply; status, backoff, self-heal.

Owns `SyncLoop`: one pass fetches the branch (gitops/source.py), plans the project at `path` with
`pipeline.plan_project` and writes it with `engine.apply.apply_plan` under the apply lease lock, recording the
revision, its author and message in the apply history; and the rules of the status record kept in the store:

- a new revision is applied; at an applied revision, changes are drift: reported (`OutOfSync`) and left, or
  reverted with `self_heal`;
- a failed attempt backs off (interval · 2^(failures-1), capped), and the same failing (revision, live state)
  is not attempted again until one of them changes or `wp sync now` asks; a lock held or a store error is
  retried after the backoff alone;
- git unreachable writes nothing to the store: the error is kept on the loop (`fetch_error`) for its logs and
  the server's `GET /sync`;
- a pass that finds nothing new writes nothing either (the record is saved only when what it shows changes).

Must never hold a copy of a pipeline stage, render a plan for people, or read os.environ (the caller passes it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.engine.apply import apply_plan, take_lock
from reconciler.engine.plan import Plan
from reconciler.errors import GitFetchError, LockHeldError, PlanError, StalePlanError, StoreError, WpError
from reconciler.gitops.repo import RepoFacts
from reconciler.gitops.source import GitSource, Revision
from reconciler.pipeline import PlanOutcome, plan_project
from reconciler.store.base import Snapshot, Store, SyncKey, SyncPhase, SyncStatus

log = logging.getLogger(__name__)

ATTEMPTS_KEPT = 10
CONTROL_POLL_S = 1.0  # how often a waiting loop reads the store for `wp sync now|suspend`
MAX_DIAGNOSTICS_SHOWN = 10
# Failures that the same (revision, live state) would repeat: not attempted again until one changes.
DETERMINISTIC = frozenset({"InvalidConfig", "PlanRefused", "ApplyFailed"})


@dataclass(frozen=True)
class SyncSettings:
    repo: str
    cache_dir: Path
    branch: str = "main"
    path: str = "."
    interval: float = 60.0
    prune: bool = False
    self_heal: bool = False
    max_backoff: float = 600.0
    lock_timeout: float = 5.0
    actor: str = "wp-sync"

    @property
    def key(self) -> SyncKey:
        return SyncKey(self.repo, self.branch, self.path)


@dataclass(frozen=True)
class PassResult:
    """What one pass did: `applied`, `synced`, `out-of-sync`, `failed`, `suspended`, `waiting` (backoff or
    the same failure), `unreachable` (git), `store-error` or `error` (a bug); `changed` when the status record
    was written."""

    outcome: str
    message: str
    status: SyncStatus | None = None
    changed: bool = False


def backoff_seconds(failures: int, interval: float, cap: float) -> float:
    if failures <= 0:
        return 0.0
    return float(min(cap, interval * 2 ** min(failures - 1, 30)))


def live_digest(snapshot: Snapshot) -> str:
    """A digest of the live state a plan read: every object's fingerprint, the deleted ones, the default pool."""
    h = hashlib.sha256()
    for address, fp in sorted((k.address, o.fingerprint) for k, o in snapshot.objects.items()):
        h.update(f"{address}\0{fp}\n".encode())
    for address in sorted(k.address for k in snapshot.deleted):
        h.update(f"deleted\0{address}\n".encode())
    h.update(f"default\0{snapshot.default_pool}".encode())
    return h.hexdigest()


def diagnostics_message(diagnostics: list[Diagnostic], root: Path) -> str:
    """The errors as `file:line:col: error: summary (at path)`, files relative to the repository."""
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    prefix = str(root).rstrip("/") + "/"
    lines = [d.format().replace(prefix, "") for d in errors[:MAX_DIAGNOSTICS_SHOWN]]
    if len(errors) > MAX_DIAGNOSTICS_SHOWN:
        lines.append(f"... and {len(errors) - MAX_DIAGNOSTICS_SHOWN} more errors")
    return "\n".join(lines)


def _summary(plan: Plan) -> dict[str, int]:
    s = plan.summary
    return {"add": s.add, "change": s.change, "destroy": s.destroy}


def _counts(summary: Mapping[str, int]) -> str:
    return f"{summary['add']} added, {summary['change']} changed, {summary['destroy']} destroyed"


def _shown(status: SyncStatus) -> tuple[Any, ...]:
    """The fields a person sees; a pass that would not change them writes nothing."""
    return (
        status.phase,
        status.reason,
        status.message,
        status.fetched_revision,
        status.attempted_revision,
        status.applied_revision,
        tuple(status.drift),
        status.handled_request_at,
    )


@dataclass
class _Pass:
    """The state of one pass: the record as read, the revision fetched, the clock."""

    status: SyncStatus
    revision: Revision
    now: datetime
    force: bool
    base: SyncStatus = field(init=False)

    def __post_init__(self) -> None:
        handled = self.status.requested_at if self.status.request_pending else self.status.handled_request_at
        self.base = replace(self.status, fetched_revision=self.revision.sha, handled_request_at=handled)

    def attempt(self, result: str, message: str, summary: Mapping[str, int] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": self.now.isoformat(),
            "revision": self.revision.sha,
            "result": result,
            "message": message.splitlines()[0][:300] if message else "",
        }
        if summary is not None:
            entry["summary"] = dict(summary)
        return entry


class SyncLoop:
    """`SyncLoop(store, settings, env=os.environ).run_pass()` once, or `run_forever()` until `stop()`."""

    def __init__(
        self,
        store: Store,
        settings: SyncSettings,
        *,
        env: Mapping[str, str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        report: Callable[[PassResult], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.env = dict(env)
        self.clock = clock
        self.report = report
        self.source = GitSource(settings.repo, settings.branch, settings.cache_dir, self.env)
        self.fetch_error: str | None = None  # git unreachable: kept here, never in the store
        self.last_result: PassResult | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._forced = threading.Event()

    # ------------------------------------------------------------------------------------------- running

    def trigger(self) -> None:
        """An immediate pass that ignores the backoff (the webhook, `wp sync now` in the same process)."""
        self._forced.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.run_pass()
            except Exception as exc:  # a bug must not end a loop that a server runs unattended
                log.exception("sync %s: the pass failed", self.settings.key)
                result = PassResult("error", f"the pass failed: {type(exc).__name__}: {exc}")
            if self.report is not None:
                self.report(result)
            self._wait()

    def _wait(self) -> None:
        """Sleep one interval; wake early on trigger(), stop(), or a `wp sync now|suspend|resume` in the store."""
        deadline = time.monotonic() + self.settings.interval
        poll = min(self.settings.interval, CONTROL_POLL_S)
        seen = self._control_state()
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wake.wait(min(remaining, poll)):
                self._wake.clear()
                return
            if self._control_state() != seen:
                return

    def _control_state(self) -> tuple[Any, ...] | None:
        try:
            status = self.store.get_sync_status(self.settings.key)
        except WpError:
            return None
        return (status.suspended, status.request_pending) if status is not None else None

    def run_pass(self, *, force: bool = False) -> PassResult:
        try:
            result = self._run_pass(force)
        except WpError as exc:  # the store (or the server in front of it) failed: nothing to record it in
            result = PassResult("store-error", exc.message)
            log.warning("sync %s: the store failed: %s", self.settings.key, exc.message)
        self.last_result = result
        return result

    def _run_pass(self, force: bool) -> PassResult:
        now = self.clock()
        status = self.store.get_sync_status(self.settings.key) or SyncStatus(self.settings.key)
        forced = force or status.request_pending
        if self._forced.is_set():
            self._forced.clear()
            forced = True
        try:
            with self.source.checkout() as revision:
                self.fetch_error = None
                return self._reconcile(_Pass(status, revision, now, forced))
        except GitFetchError as exc:
            self.fetch_error = exc.message
            return PassResult("unreachable", f"{exc.message}; nothing was changed, retrying", status)

    # ------------------------------------------------------------------------------------------- one pass

    def _save(self, outcome: str, p: _Pass, new: SyncStatus) -> PassResult:
        if _shown(new) == _shown(p.status) and new.failures == p.status.failures:
            return PassResult(outcome, new.message, p.status, changed=False)
        saved = self.store.save_sync_status(new)
        return PassResult(outcome, new.message, saved, changed=True)

    def _reconcile(self, p: _Pass) -> PassResult:
        s, rev = self.settings, p.revision
        if p.status.suspended:
            applied = (p.status.applied_revision or "nothing")[:10]
            message = (
                f"applying is suspended (at {applied}; fetched {rev.short}); `wp sync resume` to continue"
            )
            return self._save(
                "suspended",
                p,
                replace(p.base, phase=SyncPhase.SUSPENDED, reason="Suspended", message=message),
            )
        same_failure = (
            not p.force and p.status.phase is SyncPhase.FAILED and p.status.attempted_revision == rev.sha
        )
        if same_failure and p.status.last_attempt_at is not None:
            wait = backoff_seconds(p.status.failures, s.interval, s.max_backoff)
            if p.now < p.status.last_attempt_at + timedelta(seconds=wait):
                return PassResult("waiting", f"backing off after {p.status.failures} failures", p.status)
        directory = rev.checkout / s.path
        if not directory.is_dir():
            return self._failed(p, "InvalidConfig", f"{s.path} is not a directory at {rev.short}", None)
        try:
            outcome = self._plan(directory)
        except PlanError as exc:
            return self._failed(
                p, "PlanRefused", exc.message, live_digest(self.store.snapshot()), same_failure
            )
        assert outcome.snapshot is not None
        digest = live_digest(outcome.snapshot)
        if outcome.plan is None:
            message = diagnostics_message(outcome.diagnostics, rev.checkout)
            return self._failed(
                p, "InvalidConfig", message or "the configuration is invalid", digest, same_failure
            )
        return self._decide(p, outcome.plan, digest, same_failure)

    def _plan(self, directory: Path) -> PlanOutcome:
        if not (directory / "wp.yaml").is_file() and not any(directory.glob("*.tf")):
            return PlanOutcome(
                None,
                [Diagnostic(Severity.ERROR, f"no wp.yaml in {self.settings.path} at this revision")],
                snapshot=self.store.snapshot(),
            )
        return plan_project(
            directory,
            self.store,
            env=self.env,
            now=self.clock(),
            prune=self.settings.prune,
            allow_mass_delete=False,  # a sync never allows a mass delete by itself
        )

    def _decide(self, p: _Pass, plan: Plan, digest: str, same_failure: bool) -> PassResult:
        rev = p.revision
        if same_failure and p.status.reason in DETERMINISTIC and p.status.live_digest == digest:
            return PassResult("waiting", "the same revision and live state failed before", p.status)
        if not plan.has_changes:
            if p.status.phase is SyncPhase.SYNCED and p.status.applied_revision == rev.sha:
                result = self._save("synced", p, p.base)  # nothing new: writes only a handled request
                return replace(result, message=f"up to date at {rev.short}")
            message = f"{rev.short} matches the store; nothing to apply"
            new = replace(
                p.base,
                phase=SyncPhase.SYNCED,
                reason="Synced",
                message=message,
                applied_revision=rev.sha,
                attempted_revision=rev.sha,
                last_attempt_at=p.now,
                last_success_at=p.now,
                drift=(),
                failures=0,
                live_digest=None,
                attempts=(p.attempt("Synced", message), *p.status.attempts)[:ATTEMPTS_KEPT],
            )
            return self._save("synced", p, new)
        differing = sorted({c.address for c in plan.actionable} | set(plan.protection_changes))
        if rev.sha == p.status.applied_revision and not self.settings.self_heal:
            shown = ", ".join(differing[:10]) + (" ..." if len(differing) > 10 else "")
            what = "1 object differs" if len(differing) == 1 else f"{len(differing)} objects differ"
            message = (
                f"{what} from git at {rev.short}: {shown}; left as they are "
                "(run the sync with --self-heal to revert them)"
            )
            new = replace(
                p.base,
                phase=SyncPhase.OUT_OF_SYNC,
                reason="Drift",
                message=message,
                drift=tuple(differing),
                last_plan=_summary(plan),
            )
            return self._save("out-of-sync", p, new)
        return self._apply(p, plan, digest, healing=rev.sha == p.status.applied_revision, differing=differing)

    def _apply(self, p: _Pass, plan: Plan, digest: str, *, healing: bool, differing: list[str]) -> PassResult:
        s, rev = self.settings, p.revision
        facts = RepoFacts(rev.sha, s.branch, False, rev.author, rev.message)
        try:
            lock = take_lock(self.store, s.actor, f"sync {s.key} at {rev.short}", timeout=s.lock_timeout)
        except LockHeldError as exc:
            return self._failed(p, "LockHeld", exc.message, digest)
        try:
            try:
                apply_plan(self.store, plan, actor=s.actor, repo=facts, lock_id=lock.id)
            except StalePlanError:
                # another writer got in between planning and the lock: plan again, now that we hold it
                outcome = self._plan(rev.checkout / s.path)
                if outcome.plan is None:
                    message = diagnostics_message(outcome.diagnostics, rev.checkout)
                    return self._failed(p, "InvalidConfig", message, digest)
                plan = outcome.plan
                if plan.has_changes:
                    apply_plan(self.store, plan, actor=s.actor, repo=facts, lock_id=lock.id)
        except PlanError as exc:
            return self._failed(p, "PlanRefused", exc.message, digest)
        except StoreError as exc:
            return self._failed(p, "StoreError", exc.message, digest)
        except WpError as exc:
            return self._failed(p, "ApplyFailed", exc.message, digest)
        finally:
            try:
                self.store.release_lock(lock.id)
            except WpError as exc:  # the lease expires by itself; the apply's outcome stands
                log.warning("sync %s: could not release lock %s: %s", s.key, lock.id, exc.message)
        summary = _summary(plan)
        if healing:
            reason = "SelfHealed"
            message = f"reverted drift at {rev.short}: {', '.join(differing[:10])} ({_counts(summary)})"
        else:
            reason = "Applied"
            message = f"applied {rev.short} ({rev.author}: {rev.message}): {_counts(summary)}"
        new = replace(
            p.base,
            phase=SyncPhase.SYNCED,
            reason=reason,
            message=message,
            applied_revision=rev.sha,
            attempted_revision=rev.sha,
            last_attempt_at=p.now,
            last_success_at=p.now,
            last_plan=summary,
            drift=(),
            failures=0,
            live_digest=None,
            attempts=(p.attempt(reason, message, summary), *p.status.attempts)[:ATTEMPTS_KEPT],
        )
        return self._save("applied", p, new)

    def _failed(
        self, p: _Pass, reason: str, message: str, digest: str | None, same_failure: bool = False
    ) -> PassResult:
        if same_failure and reason in DETERMINISTIC and p.status.live_digest == digest:
            return PassResult("waiting", "the same revision and live state failed before", p.status)
        failures = p.status.failures + 1 if p.status.phase is SyncPhase.FAILED else 1
        new = replace(
            p.base,
            phase=SyncPhase.FAILED,
            reason=reason,
            message=message,
            attempted_revision=p.revision.sha,
            last_attempt_at=p.now,
            failures=failures,
            live_digest=digest,
            drift=(),
            attempts=(p.attempt(reason, message), *p.status.attempts)[:ATTEMPTS_KEPT],
        )
        return self._save("failed", p, new)
