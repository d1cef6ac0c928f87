"""The API fuzzed from its own OpenAPI schema (schemathesis): no 500s, and no 2xx without the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from reconciler.api import create_app
from reconciler.store.sql import SqlStore

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    store = SqlStore(f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'wp.db'}")
    yield create_app(store, api_key=KEY)
    store.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi(
        "/openapi.json", fuzz_app, headers={"Authorization": f"Bearer {KEY}"}
    )


schema = schemathesis.pytest.from_fixture("api_schema")
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:
    timeout = case.body.get("timeout") if case.path == "/lock" and isinstance(case.body, dict) else None
    if isinstance(timeout, float | int) and isinstance(case.body, dict):
        # a valid lock request may ask the server to wait up to an hour for a held lock; not while fuzzing
        case.body["timeout"] = min(timeout, 0.05)
    if case.path.endswith("/wake") and isinstance(case.query, dict):
        # likewise a worker's wake long-poll may wait a minute for new work
        wait = case.query.get("timeout")
        case.query["timeout"] = min(wait, 0.05) if isinstance(wait, float | int) else 0.05
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_success_without_the_token(case: schemathesis.Case[Any]) -> None:
    sent = {k: v for k, v in dict(case.headers or {}).items() if k.lower() != "authorization"}
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        response = case.call(headers={**sent, **headers})
        if case.path == "/health":
            assert response.status_code < 500
        elif case.path == "/sync/webhook":  # open to GitHub, authenticated by its HMAC signature instead
            assert 400 <= response.status_code < 500, (case.method, response.text)
        else:
            assert response.status_code == 401, (case.method, case.path, response.text)
