"""Pairing: declared objects and a store snapshot's live objects side by side, by Key, for the diff.

Owns what the diff reads of a snapshot (the structural protocols below: the pure core never imports the store),
the declared objects by key with their normalized attributes (`desired_objects`, deployments given the default
pool), and `PlanContext`, one plan's view of both sides: live attributes normalized once and shared by the
declared change and the drift check, lifecycle options and protection by key.

Must never do I/O, read the clock or the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.engine.compare import normalized, normalized_dump
from reconciler.errors import PlanError
from reconciler.model import (
    Deployment,
    DesiredState,
    Key,
    Lifecycle,
    ManagedObject,
    attributes,
    deployment_key,
    pool_key,
    queue_key,
    schedule_key,
)


class LiveObjectLike(Protocol):
    """What diff reads of a store's LiveObject (reconciler.store.base.LiveObject satisfies it)."""

    @property
    def key(self) -> Key: ...
    @property
    def value(self) -> ManagedObject: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def applied(self) -> Mapping[str, Any] | None: ...


class DeletedLike(Protocol):
    """What diff reads of a managed object deleted outside wp (reconciler.store.base.DeletedObject)."""

    @property
    def owner(self) -> str: ...
    @property
    def applied(self) -> Mapping[str, Any] | None: ...


class SnapshotLike(Protocol):
    """What diff reads of a store's Snapshot (reconciler.store.base.Snapshot satisfies it)."""

    @property
    def objects(self) -> Mapping[Key, LiveObjectLike]: ...
    @property
    def default_pool(self) -> str | None: ...
    @property
    def deleted(self) -> Mapping[Key, DeletedLike]: ...


_NO_LIFECYCLE = Lifecycle()


def live_attributes(live: LiveObjectLike) -> Mapping[str, Any]:
    """`attributes(live.value)`, taken from the snapshot when the store carried them (`attrs`, read-only)."""
    carried: Mapping[str, Any] | None = getattr(live, "attrs", None)
    return carried if carried is not None else attributes(live.value)


def normalized_live(live: LiveObjectLike) -> dict[str, Any]:
    """`normalized(kind, attributes(live.value))`. Carried attributes are a model dump already (plain JSON
    values), so they are shared rather than copied (the copies were a tenth of a large plan's time and memory);
    the top level is copied only when normalizing changes it. Snapshot values are read-only."""
    carried: Any = getattr(live, "attrs", None)
    if carried is None:
        return normalized(live.key.kind, live_attributes(live))
    return normalized_dump(live.key.kind, carried, copy=True)


@dataclass(frozen=True)
class Desired:
    key: Key
    value: ManagedObject
    attrs: dict[str, Any]


def _deployment_pool(deployment: Deployment, default_pool: str | None) -> Deployment:
    if deployment.work_pool is not None:
        return deployment
    if default_pool is None:
        raise PlanError(
            f"{deployment.key.address} names no work pool and the store has no default pool; set "
            "`work_pool: {name: ...}` on the deployment, or mark a pool as default with "
            "`wp work-pool create NAME --set-as-default`"
        )
    return deployment.model_copy(update={"work_pool": default_pool})


def desired_objects(desired: DesiredState, default_pool: str | None) -> dict[Key, Desired]:
    """Every declared object by key: pools, queues, deployments (schedules left out), one per schedule."""
    found: dict[Key, Desired] = {}

    def add(key: Key, value: ManagedObject) -> None:
        # a fresh model dump is plain JSON and nobody else's: normalized in place, without a deep copy
        found[key] = Desired(key, value, normalized_dump(key.kind, attributes(value), copy=False))

    for pool in desired.pools:
        add(pool_key(pool.name), pool)
    for queue in desired.queues:
        add(queue_key(queue.work_pool, queue.name), queue)
    for dep in desired.deployments:
        resolved = _deployment_pool(dep, default_pool)
        add(deployment_key(dep.flow, dep.name), resolved)
        for sched in dep.schedules:
            add(schedule_key(dep.flow, dep.name, sched.slug), sched)
    return found


@dataclass(frozen=True)
class PlanContext:
    desired: DesiredState
    snapshot: SnapshotLike
    wanted: Mapping[Key, Desired]
    now: datetime
    runs_in_flight: Mapping[str, Mapping[str, int]]
    # normalized live attributes by key, computed once for the declared change and the drift check
    live_normalized: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # objects whose live attributes equal what wp last applied, noticed while normalizing them: no drift
    as_applied: set[Key] = field(default_factory=set)
    # the snapshot's and the declared keys in order, each sorted once for the several passes over them
    live_keys: list[Key] = field(default_factory=list)
    wanted_keys: list[Key] = field(default_factory=list)

    def live_attrs(self, live: LiveObjectLike) -> dict[str, Any]:
        found = self.live_normalized.get(live.key)
        if found is None:
            raw = live_attributes(live)
            found = self.live_normalized[live.key] = normalized_live(live)
            # Equal raw values normalize to equal forms, so the drift check need not normalize `applied`.
            if live.applied is not None and live.applied == raw:
                self.as_applied.add(live.key)
        return found

    def drifted(self, live: LiveObjectLike) -> bool:
        """Whether `live` may differ from what wp last applied (False only when it certainly does not)."""
        return self.live_attrs(live) is not None and live.key not in self.as_applied

    @property
    def project(self) -> str:
        return self.desired.project

    def lifecycle(self, key: Key) -> Lifecycle:
        declared = self.desired.lifecycle
        # most projects declare no lifecycle options: then no address needs building
        return declared.get(key.address, _NO_LIFECYCLE) if declared else _NO_LIFECYCLE

    def protected(self, key: Key) -> bool:
        """Declared objects follow the config; others keep the protection recorded when last applied."""
        if key in self.wanted:
            return self.lifecycle(key).protect
        live = self.snapshot.objects.get(key)
        return bool(getattr(live, "protected", False))
