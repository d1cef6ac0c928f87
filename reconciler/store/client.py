"""HttpStore: the Store protocol over HTTP against a wp server (`wp server start`).

Owns the client side of the API: one method = one request (`snapshot()` is one `GET /snapshot`, `apply()`
one `POST /apply` carrying the UNMASKED plan), the bearer header, and turning error answers back into the
exception types of `reconciler.errors` so callers cannot tell an HttpStore from a SqlStore. A server that
cannot be reached (refused, reset, timed out) is a StoreError with `details["retryable"]` set, so a caller
that must ride out a server restart (the worker) can tell it from a refusal. Talks through
`reconciler.store.transport` (the standard library's HTTP client), or an injected `httpx.Client` (tests pass
Starlette's TestClient to talk to the in-process app). Imports only what the CLI needs: the API's request and
response shapes, the models and pydantic itself are loaded by the calls that use them, and the pools come also
as the server's JSON (`work_pool_document(s)`), so `wp work-pool ls` builds no model. Must never decide
anything a store decides.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    InvalidTransitionError,
    LockHeldError,
    NotFoundError,
    PlanError,
    StalePlanError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
    WpError,
)
from reconciler.store.transport import ClientTransport, HttpTransport, Response, Transport, TransportError

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel, TypeAdapter

    from reconciler.engine.plan import Plan
    from reconciler.model import (
        Deployment,
        FlowRun,
        Key,
        LogLine,
        RunStateChange,
        Worker,
        WorkPool,
        WorkQueue,
    )
    from reconciler.store.base import (
        ApplyProgress,
        ApplyRecord,
        LockInfo,
        RunInputs,
        Snapshot,
        SyncKey,
        SyncStatus,
    )
    from reconciler.store.holder import HolderProcess
    from reconciler.store.quick import NoopState

DEFAULT_TIMEOUT = 30.0
_ZERO = timedelta(0)

M = TypeVar("M")
# pydantic's adapters for the answers that are lists of models, built on first use (`_list_of`)
_ADAPTERS: dict[object, object] = {}


def _list_of(model: type[M]) -> TypeAdapter[list[M]]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return cast("TypeAdapter[list[M]]", adapter)


@functools.cache
def _times() -> TypeAdapter[dict[str, set[datetime]]]:
    from pydantic import TypeAdapter

    return TypeAdapter(dict[str, set[datetime]])


@functools.cache
def _counts() -> TypeAdapter[dict[str, int]]:
    from pydantic import TypeAdapter

    return TypeAdapter(dict[str, int])


# Error `type`s the server sends that map one-to-one onto our exceptions (ConfigError, ApiError: special).
_BY_TYPE: dict[str, type[WpError]] = {
    cls.__name__: cls
    for cls in (
        NotFoundError,
        ConflictError,
        InvalidTransitionError,
        PlanError,
        StalePlanError,
        LockHeldError,
        StoreError,
        StoreUnavailableError,
        AuthError,
    )
}
_BY_STATUS: dict[int, type[WpError]] = {
    401: AuthError,
    404: NotFoundError,
    409: ConflictError,
    423: LockHeldError,
    503: StoreUnavailableError,
}


_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """`value` as pydantic's `to_jsonable_python` gives it, without importing pydantic for what is already JSON
    (the usual request: a few strings, numbers, the clock) or a datetime."""
    if type(value) in _PLAIN:
        return value
    if type(value) is datetime and value.utcoffset() in (None, _ZERO):
        text = value.isoformat()  # pydantic's form: `Z` for UTC, microseconds only when there are some
        return text[:-6] + "Z" if value.tzinfo is not None else text
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: jsonable(v) for k, v in value.items()}
    if type(value) is list:
        return [jsonable(v) for v in value]
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def _segment(name: str) -> str:
    """A name as one URL path segment. Names may contain `.`, and a segment of only dots would be collapsed by
    URL normalisation, so dots are escaped there too."""
    quoted = quote(name, safe="")
    return quoted.replace(".", "%2E") if set(name) == {"."} else quoted


def _diagnostic(d: Mapping[str, Any]) -> Diagnostic:
    return Diagnostic(
        severity=Severity(d.get("severity", "error")),
        summary=str(d.get("summary", "")),
        detail=str(d.get("detail", "")),
        file=d.get("file"),
        line=d.get("line"),
        column=d.get("column"),
        path=(d["path"],) if d.get("path") else (),
    )


def _retry_after(header: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date or nothing counts as 1 s), at most 60."""
    try:
        return min(60.0, max(0.0, float(header or 1)))
    except ValueError:
        return 1.0


def error_from_response(response: Response) -> WpError:
    """The exception a store would have raised, rebuilt from a server's error answer."""
    try:
        err = response.json()["error"]
        type_, message = str(err["type"]), str(err["message"])
        path, details = err.get("path"), dict(err.get("details") or {})
        # keys that are constructor parameters of the exceptions must not arrive twice
        details = {k: v for k, v in details.items() if k not in ("path", "status", "message")}
    except (ValueError, KeyError, TypeError):
        type_, message, path, details = "", response.text[:500] or response.reason_phrase, None, {}
    status = response.status_code
    if status == 503:  # honoured by callers that retry (the worker): wait as long as the server asks
        details["retry_after"] = _retry_after(response.headers.get("retry-after"))
    if type_ == "ConfigError":
        return ConfigError([_diagnostic(d) for d in details.get("diagnostics", [])])
    if type_ == "ValidationError" or (not type_ and status == 422):
        return ValidationError(message, path=tuple(path.split(".")) if path else (), **details)
    cls = _BY_TYPE.get(type_) or _BY_STATUS.get(status)
    if cls is not None:
        return cls(message, **details)
    return ApiError(f"the wp server answered {status}: {message}", status=status, **details)


class HttpStore:
    """A Store whose every call is a request to a wp server at `base_url`."""

    def __init__(self, base_url: str, api_key: str | None = None, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport: Transport = (
            ClientTransport(client) if client is not None else HttpTransport(timeout=DEFAULT_TIMEOUT)
        )

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> HttpStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = self.base_url + path
        try:
            response = self._transport.request(
                method,
                url,
                json=jsonable(json) if json is not None else None,
                params={k: jsonable(v) for k, v in (params or {}).items() if v is not None},
                headers=self._headers,
                timeout=timeout,
            )
        except TransportError as exc:
            # `retryable`: the server may be restarting; a long-lived caller (the worker) retries these
            raise StoreError(
                f"cannot reach the wp server at {self.base_url} ({exc}); "
                "check WP_API_URL and that `wp server start` is running",
                retryable=exc.retryable,
            ) from exc
        if response.status_code == 401:
            # The server's wording speaks HTTP; a wp user sets an environment variable instead.
            wrong = "is wrong" if self._headers else "is not set"
            raise AuthError(
                f"the wp server at {self.base_url} refused the request: WP_API_KEY {wrong}; "
                "set WP_API_KEY to the server's key"
            )
        if response.is_error:
            raise error_from_response(response)
        return response.json() if response.content else None

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params)

    @staticmethod
    def _body(shape: BaseModel) -> dict[str, Any]:
        return shape.model_dump(mode="json")

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
        self._request("DELETE", f"/lock/{_segment(lock_id)}")

    def force_unlock(self, lock_id: str) -> LockInfo:
        from reconciler.api.shapes import LockShape, lock_from_shape

        data = self._request("POST", f"/lock/{_segment(lock_id)}/force-unlock")
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

        data = self._get(f"/plan-inputs/{_segment(key)}")
        return NoopState(int(data["revision"]), data.get("record"), data.get("record_revision"))

    def save_noop(self, key: str, record: Mapping[str, Any], revision: int) -> None:
        self._request(
            "PUT", f"/plan-inputs/{_segment(key)}", json={"record": dict(record), "revision": revision}
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

        return WorkPool.model_validate(self._request("PATCH", f"/work_pools/{_segment(name)}", json=fields))

    def delete_work_pool(self, name: str, *, cascade: bool = False) -> None:
        self._request("DELETE", f"/work_pools/{_segment(name)}", params={"cascade": cascade or None})

    def get_work_pool(self, name: str) -> WorkPool:
        from reconciler.model import WorkPool

        return WorkPool.model_validate(self._get(f"/work_pools/{_segment(name)}"))

    def list_work_pools(self) -> list[WorkPool]:
        from reconciler.model import WorkPool

        return _list_of(WorkPool).validate_python(self._get("/work_pools"))

    # The server answers with a pool exactly as `WorkPool.model_dump(mode="json")` gives it: the command line
    # shows that JSON as it came, without building (or importing) the models.

    def work_pool_document(self, name: str) -> dict[str, Any]:
        """`get_work_pool(name).model_dump(mode="json")`, without the model."""
        return dict(self._get(f"/work_pools/{_segment(name)}"))

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
        return str(self._get(f"/work_pools/{_segment(name)}/status", now=now)["status"])

    def set_default_work_pool(self, name: str | None) -> None:
        self._request("PUT", "/default_work_pool", json={"name": name})

    def get_default_work_pool(self) -> str | None:
        name = self._get("/default_work_pool")["name"]
        return str(name) if name is not None else None

    # ------------------------------------------------------------------------------------------- queues

    def _queue_path(self, pool: str, name: str | None = None) -> str:
        path = f"/work_pools/{_segment(pool)}/queues"
        return path if name is None else f"{path}/{_segment(name)}"

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

        return _list_of(WorkQueue).validate_python(self._get(self._queue_path(pool)))

    def work_queue_status(self, pool: str, name: str, now: datetime) -> str:
        return str(self._get(self._queue_path(pool, name) + "/status", now=now)["status"])

    # ------------------------------------------------------------------------------------------- deployments

    @staticmethod
    def _deployment_path(flow: str, name: str) -> str:
        return f"/deployments/{_segment(flow)}/{_segment(name)}"

    def get_deployment(self, flow: str, name: str) -> Deployment:
        from reconciler.model import Deployment

        return Deployment.model_validate(self._get(self._deployment_path(flow, name)))

    def list_deployments(self, work_pool: str | None = None) -> list[Deployment]:
        from reconciler.model import Deployment

        return _list_of(Deployment).validate_python(self._get("/deployments", work_pool=work_pool))

    def update_deployment(self, flow: str, name: str, **fields: Any) -> Deployment:
        from reconciler.model import Deployment

        data = self._request("PATCH", self._deployment_path(flow, name), json=fields)
        return Deployment.model_validate(data)

    def delete_deployment(self, flow: str, name: str) -> None:
        self._request("DELETE", self._deployment_path(flow, name))

    # ------------------------------------------------------------------------------------------- runtime

    def create_flow_run(self, run: FlowRun) -> FlowRun:
        from reconciler.model import FlowRun

        return FlowRun.model_validate(self._request("POST", "/flow_runs", json=run.model_dump(mode="json")))

    def get_flow_run(self, run_id: str) -> FlowRun:
        from reconciler.model import FlowRun

        return FlowRun.model_validate(self._get(f"/flow_runs/{_segment(run_id)}"))

    def list_flow_runs(
        self,
        *,
        states: Sequence[str] = (),
        work_pool: str | None = None,
        work_queue: str | None = None,
        deployment: str | None = None,
        before: datetime | None = None,
        limit: int = 200,
        match: str | None = None,
        newest_first: bool = False,
    ) -> list[FlowRun]:
        from reconciler.model import FlowRun

        params = {
            "match": match,
            "newest_first": newest_first or None,
            "state": list(states) or None,
            "work_pool": work_pool,
            "work_queue": work_queue,
            "deployment": deployment,
            "before": before,
            "limit": limit,
        }
        return _list_of(FlowRun).validate_python(self._request("GET", "/flow_runs", params=params))

    def set_run_infrastructure(self, run_id: str, infrastructure_id: str) -> FlowRun:
        from reconciler.model import FlowRun

        body = {"infrastructure_id": infrastructure_id}
        data = self._request("PUT", f"/flow_runs/{_segment(run_id)}/infrastructure", json=body)
        return FlowRun.model_validate(data)

    def set_run_state(
        self,
        run_id: str,
        state: str,
        *,
        message: str | None = None,
        expected: Sequence[str] = (),
        now: datetime,
        actor: str | None = None,
    ) -> FlowRun:
        from reconciler.model import FlowRun

        body = {"state": state, "message": message, "expected": list(expected), "now": now, "actor": actor}
        return FlowRun.model_validate(
            self._request("POST", f"/flow_runs/{_segment(run_id)}/state", json=body)
        )

    def read_run_history(self, run_id: str) -> list[RunStateChange]:
        from reconciler.model import RunStateChange

        return _list_of(RunStateChange).validate_python(self._get(f"/flow_runs/{_segment(run_id)}/history"))

    def claim_runs(
        self,
        work_pool: str,
        worker: str,
        *,
        limit: int,
        scheduled_before: datetime,
        now: datetime,
        work_queues: Sequence[str] = (),
    ) -> list[FlowRun]:
        from reconciler.model import FlowRun

        body = {
            "worker": worker,
            "limit": limit,
            "scheduled_before": scheduled_before,
            "now": now,
            "work_queues": list(work_queues),
        }
        data = self._request("POST", f"/work_pools/{_segment(work_pool)}/claim", json=body)
        return _list_of(FlowRun).validate_python(data)

    def run_inputs(self, run_id: str, worker: str) -> RunInputs:
        from reconciler.model import Deployment, FlowRun, WorkPool
        from reconciler.store.base import RunInputs

        data = self._get(f"/flow_runs/{_segment(run_id)}/inputs", worker=worker)
        return RunInputs(
            FlowRun.model_validate(data["run"]),
            Deployment.model_validate(data["deployment"]),
            WorkPool.model_validate(data["work_pool"]),
            tuple(data["secret_patterns"]),
        )

    def secret_patterns(self) -> tuple[str, ...]:
        return tuple(self._get("/secret_patterns")["patterns"])

    def wait_for_work(self, work_pool: str, after: int | None, timeout: float) -> int:
        """Long-poll the server until runs of `work_pool` may have become claimable since generation `after`
        (at once when `after` is None); the generation it answered with. Not part of the Store protocol: only a
        server can wake a worker."""
        data = self._request(
            "GET",
            f"/work_pools/{_segment(work_pool)}/wake",
            params={"after": after, "timeout": timeout},
            timeout=timeout + DEFAULT_TIMEOUT,
        )
        return int(data["generation"])

    def heartbeat_worker(
        self,
        work_pool: str,
        name: str,
        *,
        interval: float,
        now: datetime,
        host: str | None = None,
        pid: int | None = None,
    ) -> Worker:
        from reconciler.model import Worker

        body = {
            "work_pool": work_pool,
            "name": name,
            "interval": interval,
            "now": now,
            "host": host,
            "pid": pid,
        }
        return Worker.model_validate(self._request("POST", "/workers/heartbeat", json=body))

    def list_workers(self, work_pool: str, now: datetime) -> list[Worker]:
        from reconciler.model import Worker

        return _list_of(Worker).validate_python(
            self._get(f"/work_pools/{_segment(work_pool)}/workers", now=now)
        )

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        by_run: dict[str, list[LogLine]] = defaultdict(list)
        for line in lines:
            by_run[line.run_id].append(line)
        for run_id, run_lines in by_run.items():
            body = [line.model_dump(mode="json") for line in run_lines]
            self._request("POST", f"/flow_runs/{_segment(run_id)}/logs", json=body)

    def read_logs(
        self, run_id: str, *, after_seq: int = -1, limit: int = 1000, prefix: str | None = None
    ) -> list[LogLine]:
        from reconciler.model import LogLine

        query: dict[str, Any] = {"after": after_seq, "limit": limit}
        if prefix is not None:
            query["prefix"] = prefix
        data = self._get(f"/flow_runs/{_segment(run_id)}/logs", **query)
        return _list_of(LogLine).validate_python(data)

    # ------------------------------------------------------------------------------------ scheduler services

    def insert_scheduled_runs(self, runs: Iterable[FlowRun]) -> int:
        body = [run.model_dump(mode="json") for run in runs]
        return int(self._request("POST", "/scheduled_runs", json=body)["count"])

    def delete_scheduled_runs(self, deployment: str, slugs: Sequence[str], after: datetime) -> int:
        body = {"deployment": deployment, "slugs": list(slugs), "after": after}
        return int(self._request("POST", "/scheduled_runs/delete", json=body)["count"])

    def scheduled_run_times(self, deployment: str, *, after: datetime) -> dict[str, set[datetime]]:
        return _times().validate_python(
            self._get("/scheduled_runs/times", deployment=deployment, after=after)
        )

    def mark_late_runs(self, now: datetime, threshold_seconds: float = 15.0) -> int:
        body = {"now": now, "threshold_seconds": threshold_seconds}
        return int(self._request("POST", "/flow_runs/mark_late", json=body)["count"])

    def recover_dead_workers(self, now: datetime, *, heard_since: datetime | None = None) -> dict[str, int]:
        body = {"now": now, "heard_since": heard_since}
        return _counts().validate_python(self._request("POST", "/workers/recover", json=body))

    def count_runs_by_state(self, work_pool: str, work_queue: str | None = None) -> dict[str, int]:
        path = f"/work_pools/{_segment(work_pool)}/run_counts"
        return _counts().validate_python(self._get(path, work_queue=work_queue))

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
