"""The no-op shortcut in the reconcile commands: the store opened only when needed, the shortcut's read (a
SQLite file or a server read directly, else the store), and the no-op recorded after a full plan or an apply.

Owns the CLI side of reconciler/shortcut.py; reconcile.py renders and exits. Must never render or decide what
a no-op is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.context import environ, open_store

if TYPE_CHECKING:
    from reconciler.pipeline import PlanOutcome
    from reconciler.shortcut import KnownNoop
    from reconciler.store.base import Store
    from reconciler.store.quick import NoopState


def is_project(directory: Path) -> bool:
    """wp.yaml, or Terraform files that may declare wp resources (reconciler.config.hcl reads them)."""
    return (directory / "wp.yaml").is_file() or any(directory.glob("*.tf"))


class Stores:
    """The store of a command, opened only when needed: the no-op shortcut reads a SQLite store without it."""

    def __init__(self) -> None:
        self._store: Store | None = None

    def __call__(self) -> Store:
        if self._store is None:
            self._store = open_store()
        return self._store


def known_noop(directory: Path, stores: Stores, prune: bool | None) -> KnownNoop | None:
    """What the no-op shortcut found (reconciler/shortcut.py); None: plan in full."""
    if not is_project(directory):
        return None
    from reconciler.shortcut import known_noop as find
    from reconciler.store import quick

    env = environ()

    def read(key: str) -> NoopState | None:
        state = quick.read_noop(env, key)
        if state is not None:
            return state
        from reconciler.errors import WpError

        reader = getattr(stores(), "read_noop", None)
        try:
            return reader(key) if reader is not None else None
        except WpError:  # e.g. a server of an older wp: the full path says what is wrong, if anything
            return None

    return find(directory, read, env, prune=prune)


def remember(
    directory: Path, store: Store, outcome: PlanOutcome, prune: bool | None, revision: int | None
) -> None:
    from reconciler.shortcut import remember_clean

    remember_clean(directory, store, outcome, prune=prune, revision=revision)
