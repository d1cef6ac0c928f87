"""Builders of store snapshots for golden cases: live objects as a store would report them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import Deployment, ManagedObject, attributes, fingerprint, key_of
from reconciler.store.base import LiveObject, Snapshot

PROJECT = "data-platform"
SAME: Mapping[str, Any] = {"__same__": True}  # "applied exactly as it is now"


def live(
    obj: ManagedObject,
    *,
    owner: str | None = PROJECT,
    deployment: Deployment | None = None,
    applied: Mapping[str, Any] | None = SAME,
    protected: bool = False,
) -> LiveObject:
    attrs = attributes(obj)
    recorded = (attrs if owner is not None else None) if applied is SAME else applied
    return LiveObject(
        key_of(obj, deployment), obj, owner, fingerprint(attrs, owner), recorded, protected=protected
    )


def snapshot(*objects: LiveObject, default_pool: str | None = None) -> Snapshot:
    return Snapshot({o.key: o for o in objects}, default_pool)
