"""Fixtures shared by the runtime tests: the Docker Engine the docker executor's tests talk to."""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A client of the Docker Engine (DOCKER_HOST or the default socket); skips without one, fails under CI."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        message = f"no Docker Engine reachable (DOCKER_HOST or the default socket): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return client
