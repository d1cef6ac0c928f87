"""`wp server start` as a user runs it: a real uvicorn process on 127.0.0.1, reached through HttpStore."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.errors import AuthError
from reconciler.model import WorkPool
from reconciler.store.client import HttpStore
from tests.wp_server import free_port

KEY = "server-key"


def _wp() -> str:
    beside = Path(sys.executable).parent / "wp"
    found = str(beside) if beside.exists() else shutil.which("wp")
    assert found, "the `wp` console script is not installed (pip install -e .)"
    return found


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"wp server exited with {proc.returncode}: {proc.communicate()[1]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("wp server did not answer /health within 30 s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env.update(WP_HOME=str(tmp_path / "home"), WP_API_KEY=KEY)
    proc = subprocess.Popen(
        [_wp(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_server_serves_the_store_and_stops_cleanly_on_sigterm(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, proc = server
    with HttpStore(url, api_key=KEY) as store:
        store.create_work_pool(WorkPool(name="from-http", description="made over HTTP"))
        assert [p.name for p in store.list_work_pools()] == ["from-http"]
    with HttpStore(url) as anonymous, pytest.raises(AuthError):
        anonymous.list_work_pools()
    # the server wrote to the embedded SQLite database under WP_HOME
    assert (tmp_path / "home" / "wp.db").exists()

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully (lifespan and scheduler stopped), then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr


def test_server_on_a_busy_port_says_so_in_one_line_and_exits_1_at_once(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
        env.update(WP_HOME=str(tmp_path / "home"))
        # "at once" is measured against a bare start of wp on this machine now (a loaded machine is slow)
        started = time.monotonic()
        subprocess.run([_wp(), "--version"], env=env, capture_output=True, timeout=60, check=True)
        bare = time.monotonic() - started
        started = time.monotonic()
        done = subprocess.run(
            [_wp(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert str(port) in lines[0] and "in use" in lines[0]
    # at once: before the store is even opened (uvicorn used to start the app, then fail and wait 15 s)
    assert not (tmp_path / "home" / "wp.db").exists()
    assert took < 2 * bare + 3, f"took {took:.1f} s; a bare start took {bare:.1f} s"
