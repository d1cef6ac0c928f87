"""The runtime half of HttpStore: flow runs and their states, claims, workers, logs, scheduler services.

Owns the client side of the runtime routes (`/flow_runs`, `/work_pools/{pool}/claim`, `/workers`,
`/scheduled_runs`): one method = one request, the answers read into the models of `reconciler.model`, which
are imported by the calls that use them; and `wait_for_work`, the long poll by which a server wakes a worker.
Must never decide anything a store decides.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.store.http_session import DEFAULT_TIMEOUT, HttpSession, list_of, segment

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from reconciler.model import FlowRun, LogLine, RunStateChange, Worker
    from reconciler.store.base import RunInputs


@functools.cache
def _times() -> TypeAdapter[dict[str, set[datetime]]]:
    from pydantic import TypeAdapter

    return TypeAdapter(dict[str, set[datetime]])


@functools.cache
def _counts() -> TypeAdapter[dict[str, int]]:
    from pydantic import TypeAdapter

    return TypeAdapter(dict[str, int])


class HttpRuns(HttpSession):
    """Mixin of HttpStore: the runtime part of the Store protocol."""

    def create_flow_run(self, run: FlowRun) -> FlowRun:
        from reconciler.model import FlowRun

        return FlowRun.model_validate(self._request("POST", "/flow_runs", json=run.model_dump(mode="json")))

    def get_flow_run(self, run_id: str) -> FlowRun:
        from reconciler.model import FlowRun

        return FlowRun.model_validate(self._get(f"/flow_runs/{segment(run_id)}"))

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
        return list_of(FlowRun).validate_python(self._request("GET", "/flow_runs", params=params))

    def set_run_infrastructure(self, run_id: str, infrastructure_id: str) -> FlowRun:
        from reconciler.model import FlowRun

        body = {"infrastructure_id": infrastructure_id}
        data = self._request("PUT", f"/flow_runs/{segment(run_id)}/infrastructure", json=body)
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
        return FlowRun.model_validate(self._request("POST", f"/flow_runs/{segment(run_id)}/state", json=body))

    def read_run_history(self, run_id: str) -> list[RunStateChange]:
        from reconciler.model import RunStateChange

        return list_of(RunStateChange).validate_python(self._get(f"/flow_runs/{segment(run_id)}/history"))

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
        data = self._request("POST", f"/work_pools/{segment(work_pool)}/claim", json=body)
        return list_of(FlowRun).validate_python(data)

    def run_inputs(self, run_id: str, worker: str) -> RunInputs:
        from reconciler.model import Deployment, FlowRun, WorkPool
        from reconciler.store.base import RunInputs

        data = self._get(f"/flow_runs/{segment(run_id)}/inputs", worker=worker)
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
            f"/work_pools/{segment(work_pool)}/wake",
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

        return list_of(Worker).validate_python(
            self._get(f"/work_pools/{segment(work_pool)}/workers", now=now)
        )

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        by_run: dict[str, list[LogLine]] = defaultdict(list)
        for line in lines:
            by_run[line.run_id].append(line)
        for run_id, run_lines in by_run.items():
            body = [line.model_dump(mode="json") for line in run_lines]
            self._request("POST", f"/flow_runs/{segment(run_id)}/logs", json=body)

    def read_logs(
        self, run_id: str, *, after_seq: int = -1, limit: int = 1000, prefix: str | None = None
    ) -> list[LogLine]:
        from reconciler.model import LogLine

        query: dict[str, Any] = {"after": after_seq, "limit": limit}
        if prefix is not None:
            query["prefix"] = prefix
        data = self._get(f"/flow_runs/{segment(run_id)}/logs", **query)
        return list_of(LogLine).validate_python(data)

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
        path = f"/work_pools/{segment(work_pool)}/run_counts"
        return _counts().validate_python(self._get(path, work_queue=work_queue))
