"""The contract suite's `store`: SqlStore on SQLite and PostgreSQL, and HttpStore over the real ASGI app.

The HttpStore talks to `create_app(SqlStore)` in-process through Starlette's TestClient (an httpx.Client), so
every contract test also checks the API and the client end to end. It runs over SQLite only: the SQL behaviour
is already covered per backend, and this keeps the suite fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

API_KEY = "contract-key"


class HttpStoreOverSql(HttpStore):
    """An HttpStore that also shows the test the database behind the server (`engine`, `url`), for tests that
    check rows directly (e.g. "a failed apply leaves every table unchanged")."""

    def __init__(self, backing: SqlStore, client: TestClient) -> None:
        super().__init__("http://testserver", api_key=API_KEY, client=client)
        self.backing = backing

    @property
    def engine(self) -> Engine:
        return self.backing.engine

    @property
    def url(self) -> str:
        return self.backing.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "http"])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore | HttpStoreOverSql]:
    url_fixture = "postgres_url" if request.param == "postgres" else "sqlite_url"
    backing = SqlStore(str(request.getfixturevalue(url_fixture)))
    try:
        if request.param != "http":
            yield backing
            return
        with TestClient(create_app(backing, api_key=API_KEY)) as client:
            yield HttpStoreOverSql(backing, client)
    finally:
        backing.close()
