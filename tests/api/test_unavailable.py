"""A database that is briefly out of reach (SQLite busy here; a PostgreSQL restart in tests/e2e/test_outages.py)
is answered 503 with Retry-After, never 500, and the HTTP client turns that into a retryable error carrying the
wait, which the worker honours."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.errors import StoreUnavailableError
from reconciler.model import WorkPool
from reconciler.store import connection
from reconciler.store.client import HttpStore
from reconciler.store.sql import SqlStore

KEY = "k"


@pytest.fixture
def busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A server whose SQLite database another process holds the write lock of."""
    path = tmp_path / "wp.db"
    SqlStore(f"sqlite:///{path}").close()  # migrated, in WAL mode: readers go on, writers wait
    monkeypatch.setattr(connection, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # wait briefly, not a minute
    store = SqlStore(f"sqlite:///{path}")
    store.create_work_pool(WorkPool(name="p"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with TestClient(create_app(store, api_key=KEY)) as client:
            yield client
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_a_busy_database_is_a_503_with_retry_after_on_heartbeats_and_claims(busy: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    now = datetime.now(UTC).isoformat()
    for path, body in [
        ("/workers/heartbeat", {"work_pool": "p", "name": "w", "interval": 1, "now": now}),
        ("/work_pools/p/claim", {"worker": "w", "limit": 1, "scheduled_before": now, "now": now}),
    ]:
        response = busy.post(path, json=body, headers=auth)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        error = response.json()["error"]
        assert error["type"] == "StoreUnavailableError"
        assert "briefly unavailable" in error["message"] and "locked" in error["message"]


def test_the_client_raises_a_retryable_error_carrying_the_wait(busy: TestClient) -> None:
    api = HttpStore("http://testserver", api_key=KEY, client=busy)
    with pytest.raises(StoreUnavailableError) as caught:
        api.heartbeat_worker("p", "w", interval=1, now=datetime.now(UTC))
    assert caught.value.details["retryable"] is True
    assert caught.value.details["retry_after"] == 1.0
    assert api.get_work_pool("p").name == "p"  # reads go on meanwhile
