"""The worker masks a run's secret values in what it sends the store (issue 10 item 11): a secret parameter or
job variable the flow prints, or echoes in its exception, is stored as `(sensitive)`. Real processes and a real
SQLite store, with no server in between (so only the worker's own masking is at work)."""

from __future__ import annotations

import hashlib
import io
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.runtime.worker import Worker, WorkerOptions
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

PASSWORD = 'pw-"Kx81"-param'
TOKEN = "tok-env-Lm52-variable"
SHORT = "ab"  # shorter than MIN_MASKED_LENGTH: left in text, or "table" would read "t(sensitive)le"

FLOW = textwrap.dedent(
    """
    import base64, hashlib, json, os

    def leak(db_password, api_key="", who="world"):
        print("password is " + db_password, flush=True)
        print("as json " + json.dumps({"p": db_password}), flush=True)
        print("as base64 " + base64.b64encode(db_password.encode()).decode(), flush=True)
        print("token is " + os.environ.get("API_TOKEN", "-"), flush=True)
        print("a table for " + who + " " + api_key, flush=True)
        print("digest " + hashlib.sha256(db_password.encode()).hexdigest()[:12], flush=True)
        raise ValueError(f"cannot log in with {db_password!r}")
    """
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    opened.create_work_pool(
        WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))
    )
    yield opened
    opened.close()


def test_secrets_the_flow_prints_or_raises_are_stored_masked(store: SqlStore, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "demo.py").write_text(FLOW)
    deployment = Deployment(
        flow="leak",
        name="d",
        entrypoint="flows/demo.py:leak",
        work_pool="local",
        parameters={"db_password": PASSWORD, "api_key": SHORT, "who": "ab"},
        job_variables={"env": {"API_TOKEN": TOKEN}},
    )
    store.apply(
        Plan(project="t", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),)),
        ApplyRecord(project="t", actor="t", summary={}),
    )
    run_id = str(uuid.uuid4())
    store.create_flow_run(
        FlowRun(
            id=run_id,
            name="r",
            flow="leak",
            deployment="leak/d",
            work_pool="local",
            work_queue="default",
            state="SCHEDULED",
            expected_start_time=datetime.now(UTC),
            parameters=deployment.parameters,
        )
    )
    out = io.StringIO()
    Worker(
        store,
        WorkerOptions(pool="local", name="w1", poll_interval=0.1, run_once=True),
        cwd=str(project),
        out=out,
    ).run()

    run = store.get_flow_run(run_id)
    text = "\n".join(line.message for line in store.read_logs(run_id))
    assert run.state == "FAILED"
    assert run.state_message == "ValueError: cannot log in with '(sensitive)'"
    for secret in (PASSWORD, TOKEN, PASSWORD.replace('"', '\\"')):
        assert secret not in text and secret not in (run.state_message or "")
    assert "password is (sensitive)" in text and "token is (sensitive)" in text
    assert "as base64 (sensitive)" in text and 'as json {"p": "(sensitive)"}' in text
    assert "a table for ab ab" in text  # a two-character secret is not hunted in text
    # the flow got the clear value (the API masks; the worker's own read does not)
    assert f"digest {hashlib.sha256(PASSWORD.encode()).hexdigest()[:12]}" in text
