"""What `wp server start` loads only when first used: the web UI (Jinja2), the metrics registry
(prometheus_client), GitPython, the container clients, Alembic on a database at head, SQLAlchemy's PostgreSQL
dialect on SQLite; what it never loads (pydantic.v1, which FastAPI imported to look for v1 models); and that the
first request to each part is still answered in full.

Checked on the modules of a real `wp server start` process: a probe thread in that process waits for /health,
reads `sys.modules`, makes the first requests, reads it again and prints both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from reconciler.api.lazy import LazyApp
from reconciler.store.sql import SqlStore
from tests.wp_server import free_port

KEY = "lazy-key"

PROBE = textwrap.dedent(
    """
    import gc, json, os, signal, sys, threading, time, urllib.request

    port, key = int(sys.argv[1]), sys.argv[2]
    base = f"http://127.0.0.1:{port}"

    def get(path):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def probe():
        deadline = time.monotonic() + 120
        while True:
            try:
                if get("/health")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    os._exit(9)
                time.sleep(0.05)
        result = {"started": sorted(sys.modules), "gc": [gc.isenabled(), gc.get_freeze_count()]}
        for path in ("/sync", "/metrics", "/ui/"):
            result[path] = get(path)
        result["used"] = sorted(sys.modules)
        print(json.dumps(result), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe, daemon=True).start()
    sys.argv = ["wp", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    from reconciler.cli.main import main

    main()
    """
)

# Loaded by none of /health, the scheduler's first tick, or a claim; each only by the part that needs it.
NOT_AT_START = (
    "jinja2",
    "reconciler.ui.app",
    "prometheus_client",
    "git",
    "reconciler.gitops.source",
    "kubernetes",
    "docker",
    "alembic",
    "sqlalchemy.dialects.postgresql",
    "pydantic.v1",
)
# Loaded by no request either (reconciler.api.v1_probe).
NEVER = ("pydantic.v1",)


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `wp server start` on an existing database (at head), probed from inside."""
    home = tmp_path_factory.mktemp("lazy-home")
    SqlStore(f"sqlite:///{home / 'wp.db'}").close()  # migrated: the server finds the schema at head
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env.update(WP_HOME=str(home), WP_API_KEY=KEY)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(free_port()), KEY],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the probe printed nothing (exit {done.returncode}):\n{done.stderr[-3000:]}"
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_a_started_server_has_not_loaded_the_parts_nobody_asked_for(probed: dict[str, Any]) -> None:
    loaded = set(probed["started"])
    assert "fastapi" in loaded and "reconciler.api.app" in loaded  # the probe did look at the server
    assert [name for name in NOT_AT_START if name in loaded] == []


def test_the_first_request_to_the_ui_and_to_metrics_is_answered_in_full(probed: dict[str, Any]) -> None:
    status, page = probed["/ui/"]
    assert status == 200
    assert "<title>Work pools · wp</title>" in page
    status, metrics = probed["/metrics"]
    assert status == 200
    # the process's own instruments, made on this first scrape, and the gauges read from the store
    assert "# TYPE wp_claim_latency_seconds histogram" in metrics
    assert "# TYPE wp_applies_total counter" in metrics
    assert "# TYPE wp_flow_runs gauge" in metrics
    status, _sync = probed["/sync"]
    assert status == 200
    used = set(probed["used"])
    assert {"jinja2", "reconciler.ui.app", "prometheus_client"} <= used
    assert [name for name in NEVER if name in used] == []


def test_the_garbage_collector_runs_again_once_started_with_start_up_objects_frozen(
    probed: dict[str, Any],
) -> None:
    # paused while the server starts (reconciler.cli.server._collector_paused): it must be back on, or a
    # long-running server would never free a reference cycle
    enabled, frozen = probed["gc"]
    assert enabled
    assert frozen > 50_000  # modules, models and routes: not scanned by every later full collection


def test_fastapi_still_refuses_a_pydantic_v1_model_once_pydantic_v1_is_loaded() -> None:
    from fastapi import APIRouter
    from fastapi.exceptions import FastAPIError
    from pydantic import v1

    import reconciler.api.app  # noqa: F401  # installs reconciler.api.v1_probe

    class Old(v1.BaseModel):
        size: int

    router = APIRouter()
    with pytest.raises(FastAPIError, match=r"pydantic\.v1 models are no longer supported"):
        router.add_api_route("/old", lambda: {"size": 1}, response_model=Old)


def test_a_lazy_part_is_built_once_when_first_requests_arrive_together() -> None:
    builds: list[int] = []

    def build() -> ASGIApp:
        builds.append(1)
        time.sleep(0.2)  # long enough for every request below to arrive while the first build runs
        return PlainTextResponse("built")

    lazy = LazyApp(build)
    assert not lazy.built
    answers: list[str] = []
    client = TestClient(lazy)  # no `with`: a mounted app gets no lifespan events, so neither does this one

    def ask() -> None:
        answers.append(client.get("/").text)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["built"] * 6
    assert builds == [1]
    assert lazy.built
