"""The no-op shortcut: answer "No changes" without loading the project or reading the store's objects, when
both are as they were at a plan known to have had no changes.

A known no-op is recorded in the store (`Store.save_noop`) under a key naming the project directory and the
plan flags. It holds the input record of the load (reconciler/config/inputs.py: the files read with their
digests, the globs and probes, the environment variables looked up, wp's code) and the store revision at which
the plan had no changes. It is recorded by a plan that found nothing to do, and by an apply whose store was
still at its plan's revision when it began (then the store is exactly what the plan saw plus what it wrote).
A later plan hashes those files and asks the store for its revision and the record in one read; when the
revision is the same (no declared object or setting was written since, by anyone: database triggers count
every such write) and the inputs digest the same, it is the same no-op. Anything else, or any doubt, takes
the full path. Only a plan that printed nothing but "No changes" is recorded: no warnings, no diagnostics, no
drift, no targets, not a destroy.

Must never render or exit: the CLI does, through the same renderers as the full path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.config.inputs import InputRecord, context_of, still_matches
from reconciler.errors import WpError
from reconciler.store.quick import NoopState

if TYPE_CHECKING:
    from reconciler.pipeline import PlanOutcome
    from reconciler.store.base import Store


@dataclass(frozen=True)
class KnownNoop:
    """A no-op found by the shortcut: the project's name is all its output needs."""

    project: str
    revision: int


def noop_key(directory: str | Path, prune: bool | None) -> str:
    """The key of a project's known no-op: its directory (symlinks resolved) and the flags that change a plan."""
    return hashlib.sha256(json.dumps([os.path.realpath(directory), prune]).encode()).hexdigest()


def known_noop(
    directory: str | Path,
    read: Callable[[str], NoopState | None],
    env: Mapping[str, str],
    *,
    prune: bool | None,
) -> KnownNoop | None:
    """The recorded no-op of this project, if the store and the inputs are still as they were; else None.
    `read`: the store's `read_noop` (or a lighter reader of the same answer; None: the store keeps none)."""
    state = read(noop_key(directory, prune))
    if state is None or state.record is None or state.record_revision != state.revision:
        return None
    inputs = state.record.get("inputs")
    record = InputRecord.from_json(inputs) if isinstance(inputs, Mapping) else None
    if record is None or record.root != os.path.realpath(directory):
        return None
    if not still_matches(record, env, context_of(prune=prune)):
        return None
    return KnownNoop(str(state.record.get("project", "")), state.revision)


def remember_noop(
    directory: str | Path,
    store: Store,
    *,
    prune: bool | None,
    inputs: InputRecord,
    project: str,
    revision: int,
) -> None:
    """Record that this project's plan has no changes at store `revision`. Best effort: a store that refuses
    the write (read-only, locked, an older server) only leaves the next plan on the full path."""
    if getattr(store, "save_noop", None) is None:
        return
    with contextlib.suppress(WpError):
        store.save_noop(
            noop_key(directory, prune), {"project": project, "inputs": inputs.to_json()}, revision
        )


def remember_clean(
    directory: str | Path,
    store: Store,
    outcome: PlanOutcome,
    *,
    prune: bool | None,
    revision: int | None,
) -> None:
    """After a plan with no changes (`revision`: its snapshot's) or a finished apply (the revision it
    produced), record the no-op, if the outcome is one the shortcut can print the same: no diagnostics, no
    warnings (but the one about the changes an apply just made), no drift, no targets, not a destroy, and
    inputs that can be checked again."""
    from reconciler.engine.diff import standing_warnings

    plan = outcome.plan
    if plan is None or outcome.inputs is None or revision is None:
        return
    if outcome.diagnostics or standing_warnings(plan) or plan.drift or plan.targets or plan.destroy:
        return
    remember_noop(
        directory, store, prune=prune, inputs=outcome.inputs, project=plan.project, revision=revision
    )
