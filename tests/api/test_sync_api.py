"""The sync routes: GET /sync, the controls, the GitHub push webhook; and GET /metrics (SPEC §8, §9)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.gitops.sync import SyncLoop, SyncSettings
from reconciler.model import FlowRun, WorkPool, WorkQueue
from reconciler.store.base import SyncKey, SyncPhase, SyncStatus
from reconciler.store.sql import SqlStore

SECRET = "webhook-secret"
KEY = "api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPO = "https://github.com/acme/pools.git"


def _signed(
    payload: dict[str, Any], *, secret: str = SECRET, delivery: str = "d-1"
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}


def _push(branch: str = "main") -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "after": "0" * 40,
        "repository": {
            "full_name": "acme/pools",
            "clone_url": REPO,
            "ssh_url": "git@github.com:acme/pools.git",
            "html_url": "https://github.com/acme/pools",
        },
    }


@pytest.fixture
def loop(sql_store: SqlStore, tmp_path: Path) -> SyncLoop:
    return SyncLoop(sql_store, SyncSettings(repo=REPO, cache_dir=tmp_path / "cache"), env={})


@pytest.fixture
def hooked(sql_store: SqlStore, loop: SyncLoop) -> TestClient:
    """The app with a sync loop (not started: the test watches what the webhook asks of it)."""
    sql_store.save_sync_status(
        SyncStatus(SyncKey(REPO, "main", "."), phase=SyncPhase.SYNCED, reason="Applied")
    )
    return TestClient(create_app(sql_store, api_key=KEY, sync_loop=loop, webhook_secret=SECRET))


def _forced(loop: SyncLoop) -> bool:
    return loop._forced.is_set()


def test_a_signed_push_triggers_an_immediate_pass(
    hooked: TestClient, loop: SyncLoop, sql_store: SqlStore
) -> None:
    body, headers = _signed(_push())
    response = hooked.post("/sync/webhook", content=body, headers=headers)  # no API key: GitHub has none
    assert response.status_code == 200, response.text
    assert response.json()["triggered"] == [f"{REPO}@main"]
    assert _forced(loop)
    status = sql_store.get_sync_status(loop.settings.key)
    assert status is not None and status.request_pending  # a loop in another process sees it too


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "sha1=abc"},
    ],
    ids=["missing", "wrong", "other-algorithm"],
)
def test_a_bad_or_missing_signature_is_401_and_changes_nothing(
    hooked: TestClient, loop: SyncLoop, sql_store: SqlStore, headers: dict[str, str]
) -> None:
    before = sql_store.list_sync_status()
    response = hooked.post("/sync/webhook", content=json.dumps(_push()).encode(), headers=headers)
    assert response.status_code == 401
    assert not _forced(loop) and sql_store.list_sync_status() == before


def test_a_body_signed_with_another_secret_or_altered_is_refused(
    hooked: TestClient, loop: SyncLoop, sql_store: SqlStore
) -> None:
    before = sql_store.list_sync_status()
    body, headers = _signed(_push(), secret="not-ours")
    assert hooked.post("/sync/webhook", content=body, headers=headers).status_code == 401
    body, headers = _signed(_push("main"))
    altered = body.replace(b"refs/heads/main", b"refs/heads/prod")  # replayed at another branch
    assert hooked.post("/sync/webhook", content=altered, headers=headers).status_code == 401
    assert not _forced(loop) and sql_store.list_sync_status() == before


def test_a_push_to_another_branch_or_a_replayed_delivery_triggers_nothing(
    hooked: TestClient, loop: SyncLoop, sql_store: SqlStore
) -> None:
    before = sql_store.list_sync_status()
    body, headers = _signed(_push("feature"), delivery="d-7")
    response = hooked.post("/sync/webhook", content=body, headers=headers)
    assert response.status_code == 404 and "feature" in response.json()["error"]["message"]
    assert not _forced(loop) and sql_store.list_sync_status() == before

    body, headers = _signed(_push(), delivery="d-8")
    assert hooked.post("/sync/webhook", content=body, headers=headers).status_code == 200
    loop._forced.clear()
    replay = hooked.post("/sync/webhook", content=body, headers=headers)
    assert replay.status_code == 409 and not _forced(loop)


def test_without_a_secret_the_webhook_is_off(sql_store: SqlStore) -> None:
    client = TestClient(create_app(sql_store, api_key=None))
    body, headers = _signed(_push())
    response = client.post("/sync/webhook", content=body, headers=headers)
    assert response.status_code == 401 and "WP_SYNC_WEBHOOK_SECRET" in response.json()["error"]["message"]


def test_get_sync_needs_the_key_and_shows_a_loops_fetch_error(sql_store: SqlStore, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-repo.git")
    loop = SyncLoop(sql_store, SyncSettings(repo=missing, cache_dir=tmp_path / "cache"), env={})
    assert loop.run_pass().outcome == "unreachable"
    client = TestClient(create_app(sql_store, api_key=KEY, sync_loop=loop))
    assert client.get("/sync").status_code == 401
    [shown] = client.get("/sync", headers=AUTH).json()
    assert shown["repo"] == missing and shown["phase"] == "Unknown"
    assert missing in shown["fetch_error"]
    assert sql_store.list_sync_status() == []  # git unreachable: nothing stored


def test_controls_over_http(http_store: Any, sql_store: SqlStore) -> None:
    key = SyncKey(REPO, "main", ".")
    sql_store.save_sync_status(SyncStatus(key, phase=SyncPhase.SYNCED))
    [suspended] = http_store.control_sync(key, suspend=True, now=datetime.now(UTC))
    assert suspended.suspended and sql_store.get_sync_status(key).suspended  # type: ignore[union-attr]
    assert http_store.get_sync_status(SyncKey(REPO, "other", ".")) is None


# ------------------------------------------------------------------------------------------------ metrics


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_match_the_store(sql_store: SqlStore) -> None:
    now = datetime.now(UTC)
    sql_store.create_work_pool(WorkPool(name="p", concurrency_limit=3))
    sql_store.create_work_queue(WorkQueue(work_pool="p", name="fast", concurrency_limit=2))
    sql_store.create_work_pool(WorkPool(name="open"))

    def run(n: int, queue: str, start: datetime) -> FlowRun:
        return FlowRun(
            id=f"00000000-0000-0000-0000-{n:012d}",
            name=f"r{n}",
            flow="f",
            deployment="f/d",
            work_pool="p",
            work_queue=queue,
            state="SCHEDULED",
            expected_start_time=start,
            parameters={},
            job_variables={},
        )

    for n in range(4):
        sql_store.create_flow_run(run(n, "fast" if n < 2 else "default", now - timedelta(seconds=30)))
    sql_store.create_flow_run(run(9, "default", now - timedelta(hours=1)))
    sql_store.mark_late_runs(now, 600)  # run 9 only
    sql_store.heartbeat_worker("p", "w1", interval=30, now=now)
    sql_store.heartbeat_worker("p", "w-old", interval=30, now=now - timedelta(hours=1))
    sql_store.save_sync_status(
        SyncStatus(SyncKey(REPO, "main", "."), phase=SyncPhase.SYNCED, last_success_at=now, failures=0)
    )
    with TestClient(create_app(sql_store, api_key=KEY)) as client:
        assert client.get("/metrics").status_code == 401
        claimed = client.post(
            "/work_pools/p/claim",
            headers=AUTH,
            json={
                "worker": "w1",
                "limit": 3,
                "scheduled_before": now.isoformat(),
                "now": now.isoformat(),
                "work_queues": ["fast"],  # leaves the late run in `default` alone
            },
        ).json()
        response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    m = _samples(response.text)
    counts = sql_store.count_runs_grouped()
    for (pool, queue, state), n in counts.items():
        labels = (("state", state), ("work_pool", pool), ("work_queue", queue))
        assert m[("wp_flow_runs", labels)] == n
    assert m[("wp_late_runs", (("work_pool", "p"), ("work_queue", "default")))] == 1
    pending = sum(n for (pool, _, state), n in counts.items() if pool == "p" and state == "PENDING")
    assert pending == len(claimed) == 2  # the queue's limit
    assert m[("wp_work_pool_slots_used", (("work_pool", "p"),))] == pending
    assert m[("wp_work_pool_concurrency_limit", (("work_pool", "p"),))] == 3
    assert ("wp_work_pool_concurrency_limit", (("work_pool", "open"),)) not in m  # no limit: no sample
    assert m[("wp_work_queue_concurrency_limit", (("work_pool", "p"), ("work_queue", "fast")))] == 2
    assert m[("wp_workers_online", (("work_pool", "p"),))] == 1
    assert m[("wp_claim_latency_seconds_count", ())] == len(claimed)
    assert m[("wp_claim_latency_seconds_sum", ())] >= 30 * len(claimed) - 1
    sync_labels = (("branch", "main"), ("path", "."), ("repo", REPO))
    assert m[("wp_sync_phase", (*sync_labels[:2], ("phase", "Synced"), sync_labels[2]))] == 1
    assert m[("wp_sync_phase", (*sync_labels[:2], ("phase", "Failed"), sync_labels[2]))] == 0
    assert m[("wp_sync_last_success_timestamp_seconds", sync_labels)] == pytest.approx(now.timestamp())


def test_a_loop_over_http_applies_and_keeps_its_status_on_the_server(
    http_store: Any, sql_store: SqlStore, tmp_path: Path
) -> None:
    from git_remote import FLOW, make_remote, project_yaml

    remote = make_remote(tmp_path)
    sha = remote.commit({"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW}, "over http")
    loop = SyncLoop(http_store, SyncSettings(repo=remote.url, cache_dir=tmp_path / "cache"), env={})
    assert loop.run_pass().outcome == "applied"
    assert sql_store.get_work_pool("p").concurrency_limit == 4
    status = sql_store.get_sync_status(loop.settings.key)
    assert status is not None and status.applied_revision == sha
    assert [r.git_message for r in sql_store.list_history()] == ["over http"]
    assert loop.run_pass().outcome == "synced"
    remote.clone.close()
