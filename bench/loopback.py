"""A wp (or Prefect) server on loopback for the benchmarks: a free port to start it on, and its health probe.

Only the standard library, so every bench script runs on a fresh `pip install .`.
"""

from __future__ import annotations

import socket
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    """True once `url` (a health endpoint) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
