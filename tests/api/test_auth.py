"""Bearer-token auth: with WP_API_KEY set, nothing but /health answers without the right token."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.store.sql import SqlStore


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, concrete url) the API documents, path parameters filled with a plausible name."""
    ops: list[tuple[str, str]] = []
    for path, item in app.openapi()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x", path)
        ops.extend((method.upper(), url) for method in item)
    return sorted(ops)


def test_every_route_but_health_needs_the_token(app: FastAPI, client: TestClient, api_key: str) -> None:
    ops = _operations(app)
    assert len(ops) > 20  # the whole API, not a couple of routes
    for method, url in ops:
        if url == "/health":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": api_key}):
            response = client.request(method, url, headers=headers, json={})
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.json()["error"]["type"] == "AuthError"
            assert response.headers["www-authenticate"] == "Bearer"


def test_health_docs_and_unknown_routes(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    # the schema and unknown routes are protected too: no route map for strangers
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/no/such/route").status_code == 401
    assert client.get("/no/such/route", headers=auth).status_code == 404


def test_right_token_is_accepted_and_scheme_is_case_insensitive(
    client: TestClient, auth: dict[str, str], api_key: str
) -> None:
    assert client.get("/work_pools", headers=auth).json() == []
    assert client.get("/work_pools", headers={"Authorization": f"bearer {api_key}"}).status_code == 200


def test_the_key_is_never_echoed(client: TestClient, api_key: str) -> None:
    response = client.get("/work_pools", headers={"Authorization": f"Bearer {api_key}x"})
    assert response.status_code == 401
    assert api_key not in response.text


def test_openapi_documents_the_bearer_scheme(client: TestClient, auth: dict[str, str]) -> None:
    schema = client.get("/openapi.json", headers=auth).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []


@pytest.mark.parametrize("no_key", [None, ""])
def test_without_a_key_no_token_is_needed(sql_store: SqlStore, no_key: str | None) -> None:
    with TestClient(create_app(sql_store, api_key=no_key)) as c:
        assert c.get("/work_pools").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_a_cli_user_with_a_wrong_or_missing_key_is_told_to_set_wp_api_key(client: TestClient) -> None:
    from reconciler.errors import AuthError
    from reconciler.store.client import HttpStore

    with pytest.raises(AuthError, match=r"WP_API_KEY is wrong.*set WP_API_KEY to the server's key"):
        HttpStore("http://testserver", api_key="wrong", client=client).list_work_pools()
    with pytest.raises(AuthError, match=r"WP_API_KEY is not set.*set WP_API_KEY to the server's key"):
        HttpStore("http://testserver", client=client).list_work_pools()
