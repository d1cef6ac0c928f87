"""The web UI's deployment and pool pages show the job a worker would submit through the same preview as
`wp explain`: for a Kubernetes pool, the exact Job, which an API server accepts."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, WorkPool, attributes, key_of
from reconciler.runtime.executors.container import DEFAULT_IMAGE
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

KEY = "k8sfid-ui-key"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    pool = WorkPool(name="k8s", type="kubernetes", base_job_template=default_base_job_template("kubernetes"))
    deployment = Deployment(
        flow="etl", name="nightly", entrypoint="flows/etl.py:etl", work_pool="k8s",
        job_variables={"env": {"LOG_LEVEL": "debug"}},
    )  # fmt: skip
    changes = [Change(key_of(o), Action.CREATE, None, attributes(o)) for o in (pool, deployment)]
    store.apply(Plan(project="p", changes=tuple(changes)), ApplyRecord(project="p", actor="t", summary={}))
    with TestClient(create_app(store, api_key=KEY), base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def _page(client: TestClient, path: str) -> str:
    client.post("/ui/login", data={"key": KEY, "next": "/ui/pools"})
    response = client.get(path)
    assert response.status_code == 200
    return html.unescape(response.text)


@pytest.mark.parametrize("path", ["/ui/deployments/etl/nightly", "/ui/pools/k8s"])
def test_the_pages_show_the_job_a_worker_submits(client: TestClient, path: str) -> None:
    page = _page(client, path)
    assert f'"image": "{DEFAULT_IMAGE}"' in page
    assert '"generateName": "-"' not in page
    assert re.search(r'"generateName": "flow-run-name-"', page)
