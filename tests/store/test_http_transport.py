"""HttpStore's own HTTP client against a real `wp server`: a kept connection outlives a server restart, an
unreachable server is a retryable StoreError, query values arrive as the server expects them, and the proxy
variables are honoured (through a forwarding proxy on loopback) unless NO_PROXY names the host."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from wp_server import free_port, running_server

from reconciler.errors import StoreError
from reconciler.model import FlowRun, WorkPool
from reconciler.store.client import HttpStore
from reconciler.store.transport import query_string

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("home")) as url:
        yield url


def test_a_kept_connection_outlives_a_server_restart_and_a_stopped_server_is_retryable(
    tmp_path: Path,
) -> None:
    port = free_port()
    store = HttpStore(f"http://127.0.0.1:{port}")
    try:
        with running_server(tmp_path / "home", port):
            store.create_work_pool(WorkPool(name="kept"))
            assert [p.name for p in store.list_work_pools()] == ["kept"]
        with running_server(tmp_path / "home", port):  # the same database behind a new process
            assert [p.name for p in store.list_work_pools()] == ["kept"]
        with pytest.raises(StoreError, match="cannot reach the wp server") as gone:
            store.list_work_pools()
        assert gone.value.details["retryable"] is True
    finally:
        store.close()


def test_query_lists_booleans_and_times_reach_the_server(server: str) -> None:
    with HttpStore(server) as store:
        store.create_work_pool(WorkPool(name="q"))
        runs = [
            FlowRun(
                id=f"run-{n}",
                name=f"run-{n}",
                deployment="flow/dep",
                flow="flow",
                work_pool="q",
                work_queue="default",
                state=state,
                expected_start_time=NOW - timedelta(minutes=n),
                created=NOW,
            )
            for n, state in enumerate(["SCHEDULED", "RUNNING", "COMPLETED"])
        ]
        assert store.insert_scheduled_runs(runs) == 3
        found = store.list_flow_runs(states=["RUNNING", "COMPLETED"], work_pool="q", newest_first=True)
        assert [r.id for r in found] == ["run-1", "run-2"]
        assert [r.id for r in store.list_flow_runs(work_pool="q", before=NOW - timedelta(seconds=30))] == [
            "run-2",
            "run-1",
        ]
    assert query_string({"state": ["A", "B"], "flag": True, "off": False, "n": 3}) == (
        "state=A&state=B&flag=true&off=false&n=3"
    )


class _Forwarder(BaseHTTPRequestHandler):
    """A forwarding HTTP proxy: requests arrive with absolute URLs; each is recorded and passed on."""

    seen: list[str] = []

    def _forward(self) -> None:
        self.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.netloc, timeout=30)
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream.request(self.command, path, body=body or None, headers=dict(self.headers))
        answer = upstream.getresponse()
        content = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *_: object) -> None:
        pass


def test_proxy_variables_are_honoured_and_no_proxy_bypasses_them(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Forwarder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    _Forwarder.seen = []
    try:
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        with HttpStore(server) as store:
            store.list_work_pools()
        assert _Forwarder.seen == [f"{server}/work_pools"]

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with HttpStore(server) as store:
            store.list_work_pools()
        assert len(_Forwarder.seen) == 1  # straight to the server
    finally:
        proxy.shutdown()
        proxy.server_close()
