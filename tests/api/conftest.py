"""Fixtures of the API tests: a real SqlStore on SQLite in a temp dir, the real app over it, and an HttpStore
talking to that app in-process through Starlette's TestClient (an httpx.Client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def auth() -> dict[str, str]:
    return dict(AUTH)


@pytest.fixture
def sql_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    yield store
    store.close()


@pytest.fixture
def app(sql_store: SqlStore) -> FastAPI:
    return create_app(sql_store, api_key=API_KEY)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def http_store(client: TestClient) -> HttpStore:
    return HttpStore("http://testserver", api_key=API_KEY, client=client)
