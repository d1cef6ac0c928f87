"""The web UI's view of continuous sync (SPEC §8): the status records `wp sync` keeps in the store.

Owns turning each `SyncStatus` into what the sync page shows (revisions, phase, reason, message, times, the
last plan's summary, drift, the last attempts). No record means no sync has ever run against this store: the
page then says sync is not configured and how to start it. Must never run a sync itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from reconciler.store.base import Store, SyncStatus


def sync_statuses(store: Store) -> list[Mapping[str, Any]] | None:
    """The sync statuses the store keeps, or None when no sync has ever reported (not configured)."""
    statuses = store.list_sync_status()
    return [_as_mapping(s) for s in statuses] or None


def _as_mapping(status: SyncStatus) -> Mapping[str, Any]:
    out = asdict(status)
    key = out.pop("key")
    out.update(repo=key["repo"], branch=key["branch"], path=key["path"])
    out["phase"] = str(status.phase)
    if status.suspended and status.phase != "Suspended":
        out["phase"] = f"{out['phase']} (suspended)"
    return out
