"""A run-scoped local Prefect API: the part of Prefect's REST API that its flow and task engine calls, in memory.

Owns the records of one wp run as Prefect's API shows them (flows, flow runs, task runs, their states, as JSON
dicts), the answers to the engine's calls (`route`), the two server-side orchestration rules flows rely on (a
failed flow run with retries left goes to AwaitingRetry; a run scheduled in the future waits), and the HTTP server
on 127.0.0.1 that serves them from a thread. Calls it does not serve get a 404 that says so, and a note on stderr.

Why here and not in the worker or the wp server: served from the flow-run process, the engine's calls never leave
it, so a container needs no route to wp and no key (SPEC §5), and Prefect's schemas stay out of wp. A long-lived
endpoint per worker would save only this server's start (milliseconds); the real cost of a run is `import prefect`,
which `prefect_warm` removes.

Stdlib-only: no Prefect import (the engine validates the JSON it gets back). Runs on Python 3.8+.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FINAL_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
UNSUPPORTED_NOTICE = (
    "wp: Prefect's engine called {method} {path}, which wp's local Prefect API does not serve"
)


def _now() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 - datetime.UTC is 3.11+, flows run on older Pythons


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class RunRecords:
    """The flows, flow runs and task runs of one wp run, as Prefect's REST API shows them (JSON dicts)."""

    def __init__(self, run_id: str, run_name: str | None) -> None:
        self.lock = threading.Lock()
        self.flows: dict[str, dict[str, Any]] = {}
        self.flow_runs: dict[str, dict[str, Any]] = {}
        self.task_runs: dict[str, dict[str, Any]] = {}
        self._top_id = _uuid_or_none(run_id)
        self._top_name = run_name
        self._names = 0

    # -- flows and runs

    def create_flow(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "flow")
        if name not in self.flows:
            now = _iso(_now())
            self.flows[name] = {
                "id": str(uuid.uuid4()),
                "name": name,
                "created": now,
                "updated": now,
                "tags": [],
            }
        return self.flows[name]

    def create_flow_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        top_level = not body.get("parent_task_run_id") and not self.flow_runs
        run_id = (self._top_id if top_level else None) or str(body.get("id") or uuid.uuid4())
        name = body.get("name") or (self._top_name if top_level else None) or self._generated_name("flow")
        defaults: dict[str, Any] = {
            "flow_version": None,
            "parameters": {},
            "context": {},
            "job_variables": {},
        }
        run = self._new_run(body, "flow", run_id, name, defaults)
        self.flow_runs[run_id] = run
        return run

    def create_task_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run_id = str(body.get("id") or uuid.uuid4())
        name = body.get("name") or self._generated_name("task")
        run = self._new_run(body, "task", run_id, name, {"task_inputs": {}, "dynamic_key": "0"})
        self.task_runs[run_id] = run
        return run

    def _new_run(
        self, body: Mapping[str, Any], kind: str, run_id: str, name: str, defaults: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A flow or task run record as Prefect's server returns it: `defaults` and what the client sent,
        then the fields the server owns, and its first state (PENDING unless the client gave one)."""
        now = _iso(_now())
        run: dict[str, Any] = {
            "tags": [],
            "labels": {},
            "empirical_policy": {},
            **defaults,
            **body,
            "id": run_id,
            "name": name,
            "created": now,
            "updated": now,
            "run_count": 0,
            "expected_start_time": now,
            "start_time": None,
            "end_time": None,
            "total_run_time": 0.0,
        }
        run["state"] = self._state(body.get("state") or {"type": "PENDING", "name": "Pending"}, run_id, kind)
        self._mirror_state(run)
        return run

    def _generated_name(self, kind: str) -> str:
        self._names += 1
        base = self._top_name or "run"
        return f"{base}-{kind}-{self._names}"

    # -- states

    def _state(self, proposed: Mapping[str, Any], run_id: str, kind: str) -> dict[str, Any]:
        details = dict(proposed.get("state_details") or {})
        details.setdefault(f"{kind}_run_id", run_id)
        return {
            "id": str(uuid.uuid4()),
            "type": proposed.get("type"),
            "name": proposed.get("name") or str(proposed.get("type", "")).title(),
            "timestamp": proposed.get("timestamp") or _iso(_now()),
            "message": proposed.get("message"),
            "data": proposed.get("data"),
            "state_details": details,
        }

    @staticmethod
    def _mirror_state(run: dict[str, Any]) -> None:
        run["state_id"] = run["state"]["id"]
        run["state_type"] = run["state"]["type"]
        run["state_name"] = run["state"]["name"]

    def set_state(
        self, runs: dict[str, dict[str, Any]], run_id: str, body: Mapping[str, Any], kind: str
    ) -> Any:
        """Prefect's set_state: ACCEPT, or the server rules flows depend on (retries, scheduled waits)."""
        run = runs.get(run_id)
        if run is None:
            return None
        proposed = dict(body.get("state") or {})
        force = bool(body.get("force"))
        current = run["state"]
        now = _now()
        if not force and proposed.get("type") == "RUNNING" and current.get("type") == "SCHEDULED":
            due = _parse_time((current.get("state_details") or {}).get("scheduled_time"))
            if due is not None and due > now:
                wait = (due - now).total_seconds()
                return {
                    "state": current,
                    "status": "WAIT",
                    "details": {"type": "wait_details", "delay_seconds": wait},
                }
        retry = None
        if (
            kind == "flow"
            and not force
            and proposed.get("type") == "FAILED"
            and current.get("type") == "RUNNING"
        ):
            retry = self._flow_retry(run, now)
            proposed = retry or proposed
        state = self._state(proposed, run_id, kind)
        if state["type"] == "RUNNING" and current.get("type") != "RUNNING":
            run["run_count"] = int(run.get("run_count") or 0) + 1
            run["start_time"] = run["start_time"] or state["timestamp"]
        if state["type"] in FINAL_TYPES:
            run["end_time"] = state["timestamp"]
        run["state"] = state
        run["updated"] = _iso(now)
        self._mirror_state(run)
        if retry is not None:
            details = {"type": "reject_details", "reason": "The flow run has retries left."}
            return {"state": state, "status": "REJECT", "details": details}
        return {"state": state, "status": "ACCEPT", "details": {"type": "accept_details"}}

    @staticmethod
    def _flow_retry(run: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        """Prefect's RetryFailedFlows rule (RUNNING → FAILED): AwaitingRetry while attempts remain."""
        policy = run.get("empirical_policy") or {}
        retries = policy.get("retries") or policy.get("max_retries") or 0
        if int(run.get("run_count") or 0) > int(retries):
            return None
        delay = float(policy.get("retry_delay") or policy.get("retry_delay_seconds") or 0)
        return {
            "type": "SCHEDULED",
            "name": "AwaitingRetry",
            "message": "Retrying",
            "state_details": {"scheduled_time": _iso(now + timedelta(seconds=delay))},
        }


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError):
        return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # noqa: UP017


_RUN_PATH = re.compile(r"^/(flow_runs|task_runs)/([0-9a-fA-F-]{36})(/set_state|/labels)?$")


class _Handler(BaseHTTPRequestHandler):
    """One request of Prefect's client against the run's records."""

    protocol_version = "HTTP/1.1"  # keep-alive: Prefect's client reuses its connections
    disable_nagle_algorithm = True  # headers and body go in two writes: without this each call waits ~40 ms
    server: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log in the run's output

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        path = self.path.split("?", 1)[0]
        prefix = "/api"
        path = path[len(prefix) :] if path.startswith(prefix) else path
        path = path.rstrip("/") or "/"
        records = self.server.records
        with records.lock:
            code, payload = route(records, method, path, body, self.server.api_version)
        if code == 404 and path not in self.server.noted:
            self.server.noted.add(path)
            print(UNSUPPORTED_NOTICE.format(method=method, path=path), file=sys.stderr, flush=True)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


def route(records: RunRecords, method: str, path: str, body: Any, api_version: str) -> tuple[int, Any]:
    """(status, JSON body) for one call of Prefect's client; 404 for calls this API does not serve."""
    if method == "GET" and path in ("/health", "/ready"):
        return 200, True
    if method == "GET" and path == "/admin/version":
        return 200, api_version
    if method == "GET" and path == "/hello":
        return 200, "👋"
    if method == "POST" and path == "/flows":
        return 201, records.create_flow(body)
    if method == "POST" and path == "/flow_runs":
        return 201, records.create_flow_run(body)
    if method == "POST" and path == "/task_runs":
        return 201, records.create_task_run(body)
    if method == "POST" and path in ("/flow_runs/filter", "/task_runs/filter"):
        runs = records.flow_runs if path.startswith("/flow") else records.task_runs
        return 200, _filter(list(runs.values()), body)
    if method == "POST" and path == "/logs":
        return 201, None
    if method == "GET" and path == "/admin/storage":
        return 200, {"default_result_storage_block_id": None}  # results stay on the local file system
    if method == "GET" and path.startswith("/flows/"):
        flow = next((f for f in records.flows.values() if f["id"] == path[len("/flows/") :]), None)
        return (200, flow) if flow else (404, {"detail": "flow not found"})
    match = _RUN_PATH.match(path)
    if match is None:
        return 404, {
            "detail": f"wp runs Prefect flows without a Prefect server, and {method} {path} needs one"
        }
    kind, run_id, action = match.group(1), match.group(2), match.group(3)
    runs = records.flow_runs if kind == "flow_runs" else records.task_runs
    if run_id not in runs:
        return 404, {"detail": f"{kind[:-1].replace('_', ' ')} not found"}
    run = runs[run_id]
    if action == "/set_state" and method == "POST":
        return 201, records.set_state(runs, run_id, body, "flow" if kind == "flow_runs" else "task")
    if action == "/labels" and method == "PATCH":
        run["labels"] = {**(run.get("labels") or {}), **(body if isinstance(body, dict) else {})}
        return 204, None
    if action is None and method == "GET":
        return 200, run
    if action is None and method == "PATCH":
        run.update({k: v for k, v in body.items() if k not in ("id", "state")})
        return 204, None
    if action is None and method == "DELETE":
        runs.pop(run_id)
        return 204, None
    return 404, {"detail": "Not Found"}


def _filter(runs: list[dict[str, Any]], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The filters the engine uses: by parent task run (a subflow re-attaching) and by id."""
    flow_run_filter = body.get("flow_runs") or {}
    parent = (flow_run_filter.get("parent_task_run_id") or {}).get("any_")
    ids = (flow_run_filter.get("id") or {}).get("any_")
    picked = [
        r
        for r in runs
        if (parent is None or r.get("parent_task_run_id") in parent) and (ids is None or r["id"] in ids)
    ]
    limit = body.get("limit")
    return picked[: int(limit)] if limit else picked


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, records: RunRecords, api_version: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.records = records
        self.api_version = api_version
        self.noted: set[str] = set()


def serve(records: RunRecords, api_version: str) -> tuple[LocalServer, str]:
    """Start serving `records` on 127.0.0.1 from a daemon thread; the server and its API URL."""
    server = LocalServer(records, api_version)
    # a short poll interval: shutting down waits for the serving loop to notice
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="wp-prefect-api", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return server, f"http://{host!s}:{port}/api"
