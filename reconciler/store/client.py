"""HttpStore: the Store protocol over HTTP against a wp server (`wp server start`).

Owns the client side of the API's reconcile and object routes: one method = one request (`snapshot()` is one
`GET /snapshot`, `apply()` one `POST /apply` carrying the UNMASKED plan), for the lock, history, plan inputs,
pools, queues, deployments and sync status; the runtime routes come from `HttpRuns` (http_runs.py), the
requests themselves (bearer header, JSON, a server that cannot be reached as a retryable StoreError) from
`HttpSession` (http_session.py), and error answers become the exceptions of `reconciler.errors`
(http_errors.py), so callers cannot tell an HttpStore from a SqlStore. Imports only what the CLI needs: the
API's request and response shapes, the models and pydantic itself are loaded by the calls that use them, and
the pools come also as the server's JSON (`work_pool_document(s)`), so `wp work-pool ls` builds no model.
Must never decide anything a store decides.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.store.http_runs import HttpRuns
from reconciler.store.http_session import DEFAULT_TIMEOUT, list_of, segment

if TYPE_CHECKING:
    from reconciler.engine.plan import Plan
    from reconciler.model import Deployment, Key, WorkPool, WorkQueue
    from reconciler.store.base import ApplyProgress, ApplyRecord, LockInfo, Snapshot, SyncKey, SyncStatus
    from reconciler.store.holder import HolderProcess
    from reconciler.store.quick import NoopState


class HttpStore(HttpRuns):
    """A Store whose every call is a request to a wp server at `base_url`."""

    # ------------------------------------------------------------------------------------------- reconcile

    def snapshot(self, only: Collection[Key] | None = None) -> Snapshot:
        from reconciler.api.shapes import SnapshotShape, snapshot_from_shape

        if only is None:
            return snapshot_from_shape(SnapshotShape.model_validate(self._get("/snapshot")))
        # `keyed` tells "none of these" (an empty list sends no `only`) from "everything"
        data = self._get("/snapshot", only=sorted(k.address for k in only), keyed=True)
        return snapshot_from_shape(SnapshotShape.model_validate(data))

    def apply(
        self,
        plan: Plan,
        record: ApplyRecord,
        *,
        lock_id: str | None = None,
        progress: ApplyProgress | None = None,
    ) -> ApplyRecord:
        total = len(plan.actionable)
        if progress is not None:  # one request: the server's transaction cannot be watched from here
            progress("writing on the server", 0, total)
        from reconciler.api.shapes import (
            ApplyRecordShape,
            ApplyRequest,
            plan_to_shape,
            record_from_shape,
            record_to_shape,
        )

        body = ApplyRequest(plan=plan_to_shape(plan), record=record_to_shape(record), lock_id=lock_id)
        data = self._request("POST", "/apply", json=self._body(body))
        if progress is not None:
            progress("written", total, total)
        return record_from_shape(ApplyRecordShape.model_validate(data))

    def acquire_lock(
        self,
        holder: str,
        operation: str,
        *,
        timeout: float = 0.0,
        ttl: float = 600.0,
        process: HolderProcess | None = None,
    ) -> LockInfo:
        from reconciler.api.shapes import LockShape, lock_from_shape

        body = {
            "holder": holder,
            "operation": operation,
            "timeout": timeout,
            "ttl": ttl,
            "process": asdict(process) if process is not None else None,
        }
        # the server may wait `timeout` seconds for the lock before answering
        wait = timeout + DEFAULT_TIMEOUT if timeout > 0 else None
        data = self._request("POST", "/lock", json=body, timeout=wait)
        return lock_from_shape(LockShape.model_validate(data))

    def release_lock(self, lock_id: str) -> None:
        self._request("DELETE", f"/lock/{segment(lock_id)}")

    def force_unlock(self, lock_id: str) -> LockInfo:
        from reconciler.api.shapes import LockShape, lock_from_shape

        data = self._request("POST", f"/lock/{segment(lock_id)}/force-unlock")
        return lock_from_shape(LockShape.model_validate(data))

    def current_lock(self) -> LockInfo | None:
        from reconciler.api.shapes import CurrentLock, lock_from_shape

        lock = CurrentLock.model_validate(self._get("/lock")).lock
        return lock_from_shape(lock) if lock is not None else None

    def list_history(self, project: str | None = None, limit: int = 50) -> list[ApplyRecord]:
        from reconciler.api.shapes import ApplyRecordShape, record_from_shape

        data = self._get("/history", project=project, limit=limit)
        return [record_from_shape(ApplyRecordShape.model_validate(r)) for r in data]

    def read_noop(self, key: str) -> NoopState:
        from reconciler.store.quick import NoopState

        data = self._get(f"/plan-inputs/{segment(key)}")
        return NoopState(int(data["revision"]), data.get("record"), data.get("record_revision"))

    def save_noop(self, key: str, record: Mapping[str, Any], revision: int) -> None:
        self._request(
            "PUT", f"/plan-inputs/{segment(key)}", json={"record": dict(record), "revision": revision}
        )

    # ------------------------------------------------------------------------------------------- pools

    def create_work_pool(
        self, pool: WorkPool, *, owner: str | None = None, overwrite: bool = False
    ) -> WorkPool:
        from reconciler.model import WorkPool

        body = {**pool.model_dump(mode="json"), "owner": owner, "overwrite": overwrite}
        return WorkPool.model_validate(self._request("POST", "/work_pools", json=body))

    def update_work_pool(self, name: str, **fields: Any) -> WorkPool:
        from reconciler.model import WorkPool

        return WorkPool.model_validate(self._request("PATCH", f"/work_pools/{segment(name)}", json=fields))

    def delete_work_pool(self, name: str, *, cascade: bool = False) -> None:
        self._request("DELETE", f"/work_pools/{segment(name)}", params={"cascade": cascade or None})

    def get_work_pool(self, name: str) -> WorkPool:
        from reconciler.model import WorkPool

        return WorkPool.model_validate(self._get(f"/work_pools/{segment(name)}"))

    def list_work_pools(self) -> list[WorkPool]:
        from reconciler.model import WorkPool

        return list_of(WorkPool).validate_python(self._get("/work_pools"))

    # The server answers with a pool exactly as `WorkPool.model_dump(mode="json")` gives it: the command line
    # shows that JSON as it came, without building (or importing) the models.

    def work_pool_document(self, name: str) -> dict[str, Any]:
        """`get_work_pool(name).model_dump(mode="json")`, without the model."""
        return dict(self._get(f"/work_pools/{segment(name)}"))

    def work_pool_documents(self) -> list[dict[str, Any]]:
        """`[p.model_dump(mode="json") for p in list_work_pools()]`, without the models."""
        return [dict(p) for p in self._get("/work_pools")]

    def create_work_pool_document(
        self, pool: Mapping[str, Any], *, owner: str | None = None, overwrite: bool = False
    ) -> dict[str, Any]:
        """`create_work_pool` of a pool given as `WorkPool.model_dump(mode="json")` gives it (the server
        validates it as the model would); the created pool in the same form."""
        body = {**pool, "owner": owner, "overwrite": overwrite}
        return dict(self._request("POST", "/work_pools", json=body))

    def work_pool_status(self, name: str, now: datetime) -> str:
        return str(self._get(f"/work_pools/{segment(name)}/status", now=now)["status"])

    def set_default_work_pool(self, name: str | None) -> None:
        self._request("PUT", "/default_work_pool", json={"name": name})

    def get_default_work_pool(self) -> str | None:
        name = self._get("/default_work_pool")["name"]
        return str(name) if name is not None else None

    # ------------------------------------------------------------------------------------------- queues

    def _queue_path(self, pool: str, name: str | None = None) -> str:
        path = f"/work_pools/{segment(pool)}/queues"
        return path if name is None else f"{path}/{segment(name)}"

    def create_work_queue(self, queue: WorkQueue, *, owner: str | None = None) -> WorkQueue:
        from reconciler.model import WorkQueue

        body = {**queue.model_dump(mode="json", exclude={"work_pool"}), "owner": owner}
        return WorkQueue.model_validate(self._request("POST", self._queue_path(queue.work_pool), json=body))

    def update_work_queue(self, pool: str, name: str, **fields: Any) -> WorkQueue:
        from reconciler.model import WorkQueue

        return WorkQueue.model_validate(self._request("PATCH", self._queue_path(pool, name), json=fields))

    def delete_work_queue(self, pool: str, name: str, *, cascade: bool = False) -> None:
        self._request("DELETE", self._queue_path(pool, name), params={"cascade": cascade or None})

    def get_work_queue(self, pool: str, name: str) -> WorkQueue:
        from reconciler.model import WorkQueue

        return WorkQueue.model_validate(self._get(self._queue_path(pool, name)))

    def list_work_queues(self, pool: str) -> list[WorkQueue]:
        from reconciler.model import WorkQueue

        return list_of(WorkQueue).validate_python(self._get(self._queue_path(pool)))

    def work_queue_status(self, pool: str, name: str, now: datetime) -> str:
        return str(self._get(self._queue_path(pool, name) + "/status", now=now)["status"])

    # ------------------------------------------------------------------------------------------- deployments

    @staticmethod
    def _deployment_path(flow: str, name: str) -> str:
        return f"/deployments/{segment(flow)}/{segment(name)}"

    def get_deployment(self, flow: str, name: str) -> Deployment:
        from reconciler.model import Deployment

        return Deployment.model_validate(self._get(self._deployment_path(flow, name)))

    def list_deployments(self, work_pool: str | None = None) -> list[Deployment]:
        from reconciler.model import Deployment

        return list_of(Deployment).validate_python(self._get("/deployments", work_pool=work_pool))

    def update_deployment(self, flow: str, name: str, **fields: Any) -> Deployment:
        from reconciler.model import Deployment

        data = self._request("PATCH", self._deployment_path(flow, name), json=fields)
        return Deployment.model_validate(data)

    def delete_deployment(self, flow: str, name: str) -> None:
        self._request("DELETE", self._deployment_path(flow, name))

    # ------------------------------------------------------------------------------------------- sync

    def list_sync_status(self) -> list[SyncStatus]:
        from reconciler.api.sync_shapes import SyncStatusShape, sync_status_from_shape

        return [sync_status_from_shape(SyncStatusShape.model_validate(s)) for s in self._get("/sync")]

    def get_sync_status(self, key: SyncKey) -> SyncStatus | None:
        from reconciler.api.sync_shapes import SyncStatusShape, sync_status_from_shape

        params = {"repo": key.repo, "branch": key.branch, "path": key.path}
        data = self._request("GET", "/sync/status", params=params)
        return sync_status_from_shape(SyncStatusShape.model_validate(data)) if data is not None else None

    def save_sync_status(self, status: SyncStatus) -> SyncStatus:
        from reconciler.api.sync_shapes import SyncStatusShape, sync_status_from_shape, sync_status_to_shape

        data = self._request("PUT", "/sync/status", json=self._body(sync_status_to_shape(status)))
        return sync_status_from_shape(SyncStatusShape.model_validate(data))

    def control_sync(
        self, key: SyncKey | None, *, suspend: bool | None = None, request: bool = False, now: datetime
    ) -> list[SyncStatus]:
        from reconciler.api.sync_shapes import (
            SyncControlRequest,
            SyncKeyShape,
            SyncStatusShape,
            sync_status_from_shape,
        )

        body = SyncControlRequest(
            key=SyncKeyShape(repo=key.repo, branch=key.branch, path=key.path) if key is not None else None,
            suspend=suspend,
            request=request,
            now=now,
        )
        data = self._request("POST", "/sync/control", json=self._body(body))
        return [sync_status_from_shape(SyncStatusShape.model_validate(s)) for s in data]
