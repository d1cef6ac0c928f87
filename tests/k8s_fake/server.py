"""The fake cluster's HTTP face: the batch/v1 and core/v1 endpoints the Kubernetes executor uses, spoken as a
real API server speaks them (JSON bodies, `Status` errors, bearer-token auth, chunked watch streams of
`{"type", "object"}` lines with resource versions and `timeoutSeconds`, followed pod logs with `timestamps`,
`sinceSeconds` and `sinceTime`), on a threaded HTTP server bound to 127.0.0.1:0.

Endpoints: jobs (create, read, delete, list/watch with label and field selectors, per namespace and across
namespaces), pods (read, list/watch), pod logs, events (list with a field selector). Every request body is
checked by `validation` before it changes anything. `FakeApiServer.kubeconfig(path)` writes the kubeconfig a
client uses to reach it, exactly as for a real cluster.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from k8s_fake.cluster import FakeCluster, nano_timestamp
from k8s_fake.validation import check_job, check_model

TOKEN = "fake-cluster-token"


def _selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """A label (or field) selector: `a=b,c!=d,e` (equality-based, as the executor writes them)."""
    terms = [t.strip() for t in (text or "").split(",") if t.strip()]

    def matches(values: dict[str, str]) -> bool:
        for term in terms:
            if "!=" in term:
                k, v = term.split("!=", 1)
                if values.get(k) == v:
                    return False
            elif "=" in term:
                k, v = term.split("=", 1)
                if values.get(k.strip()) != v.lstrip("=").strip():
                    return False
            elif term not in values:
                return False
        return True

    return matches


def _fields(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    out = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
    if "involvedObject" in obj:
        out.update({f"involvedObject.{k}": str(v) for k, v in obj["involvedObject"].items()})
    return out


def _parse_time(text: str) -> float:
    whole, _, frac = text.rstrip("Z").partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    # ---------------------------------------------------------------------------------------- plumbing

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send_json(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        )

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._body()
        self._status(401, "Unauthorized", "Unauthorized")
        return False

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        cluster = self.server.cluster
        with cluster.cond:
            cluster.requests.append((method, self.path))
        if not self._authorized():
            return
        for pattern, handler in self.server.routes.get(method, []):
            m = re.fullmatch(pattern, url.path)
            if m:
                handler(self, query, *m.groups())
                return
        self._body()
        self._status(
            404, "NotFound", f"the server could not find the requested resource ({method} {url.path})"
        )

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # ---------------------------------------------------------------------------------------- jobs

    def create_job(self, query: dict[str, str], ns: str) -> None:
        body = self._body()
        cluster = self.server.cluster
        if ns not in self.server.namespaces:
            self._status(404, "NotFound", f'namespaces "{ns}" not found')
            return
        errors = check_job(body) if isinstance(body, dict) else ["body: expected a JSON object"]
        name = (body or {}).get("metadata", {}).get("name") or (body or {}).get("metadata", {}).get(
            "generateName", ""
        )
        if errors:
            self.server.rejected.append(errors)
            self._status(422, "Invalid", f'Job.batch "{name}" is invalid: [{", ".join(errors)}]')
            return
        if body["metadata"].get("namespace", ns) != ns:
            self._status(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
            return
        try:
            job = cluster.create_job(ns, body)
        except KeyError:
            self._status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            return
        self._send_json(201, job)

    def read_job(self, query: dict[str, str], ns: str, name: str) -> None:
        cluster = self.server.cluster
        with cluster.cond:
            job = copy.deepcopy(cluster.jobs.get((ns, name)))
        if job is None:
            self._status(404, "NotFound", f'jobs.batch "{name}" not found')
        else:
            self._send_json(200, job)

    def delete_job(self, query: dict[str, str], ns: str, name: str) -> None:
        body = self._body() or {}
        errors = check_model(body, "V1DeleteOptions")
        if errors:
            self._status(422, "Invalid", f"DeleteOptions is invalid: {errors}")
            return
        propagation = body.get("propagationPolicy") or query.get("propagationPolicy")
        try:
            job = self.server.cluster.delete_job(ns, name, propagation)
        except KeyError:
            self._status(404, "NotFound", f'jobs.batch "{name}" not found')
            return
        self._send_json(200, job)

    def list_jobs(self, query: dict[str, str], ns: str | None = None) -> None:
        self._list_or_watch("Job", ns, query, lambda c: c.jobs.values(), "batch/v1", "JobList")

    def list_all_jobs(self, query: dict[str, str]) -> None:
        self.list_jobs(query, None)

    # ---------------------------------------------------------------------------------------- pods

    def list_pods(self, query: dict[str, str], ns: str) -> None:
        self._list_or_watch("Pod", ns, query, lambda c: c.pods.values(), "v1", "PodList")

    def read_pod(self, query: dict[str, str], ns: str, name: str) -> None:
        cluster = self.server.cluster
        with cluster.cond:
            pod = copy.deepcopy(cluster.pods.get((ns, name)))
        if pod is None:
            self._status(404, "NotFound", f'pods "{name}" not found')
        else:
            self._send_json(200, pod)

    def pod_log(self, query: dict[str, str], ns: str, name: str) -> None:
        cluster = self.server.cluster
        with cluster.cond:
            pod = cluster.pods.get((ns, name))
            runtime = cluster.runtimes.get((ns, name))
            if pod is None or runtime is None:
                self._status(404, "NotFound", f'pods "{name}" not found')
                return
            if runtime.proc is None and not runtime.done:
                waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting", {})
                container = pod["spec"]["containers"][0]["name"]
                self._status(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{name}" is waiting to start: {waiting.get("reason", "ContainerCreating")}',
                )
                return
            cut = cluster.log_cuts.pop(0) if cluster.log_cuts else None
        follow = query.get("follow") in ("true", "1")
        stamps = query.get("timestamps") in ("true", "1")
        since = None
        if "sinceSeconds" in query:
            since = time.time() - int(query["sinceSeconds"])
        if "sinceTime" in query:
            since = _parse_time(query["sinceTime"])
        self._start_chunked("text/plain")
        sent = 0
        pos = 0
        while True:
            with cluster.cond:
                lines = runtime.log[pos:]
                pos = len(runtime.log)
                finished = runtime.done
                if not lines and follow and not finished and not cluster.closed:
                    cluster.cond.wait(0.2)
                    continue
            for t, text in lines:
                if since is not None and t < since:
                    continue
                if cut is not None and sent >= cut:
                    self.close_connection = True  # abrupt: no terminating chunk, as a dropped connection
                    return
                self._chunk(((nano_timestamp(t) + " ") if stamps else "").encode() + text.encode() + b"\n")
                sent += 1
            if not follow or (finished and pos == len(runtime.log)) or cluster.closed:
                break
        self._end_chunked()

    # ---------------------------------------------------------------------------------------- events

    def list_events(self, query: dict[str, str], ns: str) -> None:
        cluster = self.server.cluster
        match = _selector(query.get("fieldSelector"))
        with cluster.cond:
            items = [
                copy.deepcopy(e)
                for e in cluster.events
                if e["metadata"]["namespace"] == ns and match(_fields(e))
            ]
            rv = str(cluster.rv)
        self._send_json(
            200,
            {"apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": rv}, "items": items},
        )

    # ---------------------------------------------------------------------------------------- list / watch

    def _list_or_watch(
        self,
        kind: str,
        ns: str | None,
        query: dict[str, str],
        objects: Callable[[FakeCluster], Iterable[dict[str, Any]]],
        api_version: str,
        list_kind: str,
    ) -> None:
        cluster = self.server.cluster
        labels = _selector(query.get("labelSelector"))
        fields = _selector(query.get("fieldSelector"))

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return (
                (ns is None or meta["namespace"] == ns)
                and labels(meta.get("labels") or {})
                and fields(_fields(obj))
            )

        if query.get("watch") not in ("true", "1"):
            with cluster.cond:
                items = [copy.deepcopy(o) for o in objects(cluster) if wanted(o)]
                rv = str(cluster.rv)
            self._send_json(
                200,
                {
                    "apiVersion": api_version,
                    "kind": list_kind,
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                },
            )
            return
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        rv_text = query.get("resourceVersion")
        self._start_chunked("application/json")
        with cluster.cond:
            generation = cluster.watch_generation
            pending: list[tuple[str, dict[str, Any]]] = []
            if not rv_text or rv_text == "0":
                pending = [("ADDED", copy.deepcopy(o)) for o in objects(cluster) if wanted(o)]
                pos = len(cluster.history)
            else:
                since = int(rv_text)
                if since < self.server.compacted_rv:
                    gone = {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": f"too old resource version: {since}",
                        "reason": "Expired",
                        "code": 410,
                    }
                    pending = [("ERROR", gone)]
                    pos = len(cluster.history)
                else:
                    pos = next(
                        (i for i, e in enumerate(cluster.history) if e.rv > since), len(cluster.history)
                    )
        while True:
            for type_, obj in pending:
                self._chunk(json.dumps({"type": type_, "object": obj}).encode() + b"\n")
            if pending and pending[-1][0] == "ERROR":
                break
            with cluster.cond:
                while (
                    pos == len(cluster.history)
                    and cluster.watch_generation == generation
                    and not cluster.closed
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cluster.cond.wait(min(left, 0.2))
                if cluster.watch_generation != generation:
                    self.close_connection = True  # dropped: the client sees the stream end mid-way
                    return
                if time.monotonic() >= deadline or cluster.closed:
                    break
                pending = [
                    (e.type, copy.deepcopy(e.obj))
                    for e in cluster.history[pos:]
                    if e.kind == kind and wanted(e.obj)
                ]
                pos = len(cluster.history)
        self._end_chunked()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-stream (a worker stopping, a test ending) is normal for an API server."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    cluster: FakeCluster
    routes: dict[str, list[tuple[str, Callable[..., None]]]]
    namespaces: set[str]
    rejected: list[list[str]]
    compacted_rv: int


NS = r"/namespaces/([a-z0-9-]+)"
NAME = r"([a-z0-9.-]+)"


class FakeApiServer:
    """A running fake API server over a FakeCluster; a context manager."""

    def __init__(self, cluster: FakeCluster, namespaces: Iterable[str] = ("default",)) -> None:
        self.cluster = cluster
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.cluster = cluster
        self._server.namespaces = set(namespaces)
        self._server.rejected = []
        self._server.compacted_rv = 0
        h = _Handler
        self._server.routes = {
            "GET": [
                (rf"/apis/batch/v1{NS}/jobs", h.list_jobs),
                (r"/apis/batch/v1/jobs", h.list_all_jobs),
                (rf"/apis/batch/v1{NS}/jobs/{NAME}", h.read_job),
                (rf"/api/v1{NS}/pods", h.list_pods),
                (rf"/api/v1{NS}/pods/{NAME}", h.read_pod),
                (rf"/api/v1{NS}/pods/{NAME}/log", h.pod_log),
                (rf"/api/v1{NS}/events", h.list_events),
            ],
            "POST": [(rf"/apis/batch/v1{NS}/jobs", h.create_job)],
            "DELETE": [(rf"/apis/batch/v1{NS}/jobs/{NAME}", h.delete_job)],
        }
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def rejected(self) -> list[list[str]]:
        """The validation errors of every refused request body, in order."""
        return self._server.rejected

    def expire_history(self) -> None:
        """Every resource version seen so far becomes too old to watch from (410 Gone), as after compaction."""
        with self.cluster.cond:
            self._server.compacted_rv = self.cluster.rv + 1

    def add_namespace(self, name: str) -> None:
        self._server.namespaces.add(name)

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "wp-worker", "user": {"token": TOKEN}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "wp-worker", "namespace": "default"}}
            ],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML: the client reads it as any kubeconfig
        return path

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.shutdown()
        self._server.shutdown()
        self._server.server_close()
