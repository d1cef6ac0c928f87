"""A real `wp server start` process for tests that talk to it over loopback HTTP (HttpStore, the CLI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_server(home: Path, port: int | None = None, *, within: float = 60) -> Iterator[str]:
    """`wp server start --no-scheduler` on 127.0.0.1 (a free port unless given) with WP_HOME=`home`; its URL
    once healthy. Killed on exit."""
    port = port or free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WP_") and not k.lower().endswith("_proxy")
    }
    env.update(WP_HOME=str(home))
    wp = Path(sys.executable).parent / "wp"
    proc = subprocess.Popen(
        [str(wp), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within
        while not healthy(url):
            if proc.poll() is not None:
                raise AssertionError(f"wp server exited with {proc.returncode}: {proc.communicate()[1]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"wp server did not become healthy within {within:g} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.communicate()
