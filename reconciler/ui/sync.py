"""The web UI's seam to continuous sync (SPEC §8): what the sync page shows, if the store knows it.

Owns one question: "does this store keep sync statuses, and what are they?". `wp sync` is built apart; until
its store calls exist, `sync_statuses` answers None and the page says sync is not configured. When it lands,
the store grows a `list_sync_statuses()` (or `get_sync_status()`) returning mappings with the fields of SPEC
§8 (revisions, phase, reason, message, times, last plan summary, history), and this page shows them with no
other change. Must never run a sync itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.store.base import Store


def sync_statuses(store: Store) -> list[Mapping[str, Any]] | None:
    """The sync statuses the store keeps, or None when the store has no sync (not configured)."""
    lister = getattr(store, "list_sync_statuses", None)
    if callable(lister):
        return [_as_mapping(s) for s in lister()]
    getter = getattr(store, "get_sync_status", None)
    if callable(getter):
        status = getter()
        return None if status is None else [_as_mapping(status)]
    return None


def _as_mapping(status: Any) -> Mapping[str, Any]:
    if isinstance(status, Mapping):
        return status
    dump = getattr(status, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    return dict(vars(status))
