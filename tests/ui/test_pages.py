"""The web UI over HTTP (no browser): the login gate, CSRF, read-only managed objects, masked secrets and
paging, against the real ASGI app on a real SQLite store. What a browser adds (live updates, clicks, the
layout) is in test_browser.py."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from reconciler.api import create_app
from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes, key_of
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

KEY = "ui-test-key"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    managed = WorkPool(name="managed", concurrency_limit=4)
    deployment = Deployment(
        flow="etl",
        name="nightly",
        entrypoint="flows.py:etl",
        work_pool="managed",
        parameters={"region": "eu", "api_token": "hunter2-parameter"},
        job_variables={"env": {"DB_PASSWORD": "hunter2-env", "MODE": "fast"}},
    )
    changes = [Change(key_of(o), Action.CREATE, None, attributes(o)) for o in (managed, deployment)]
    s.apply(
        Plan(project="shop", changes=tuple(changes)),
        ApplyRecord(
            project="shop",
            actor="ana",
            summary={"add": 2},
            git_commit="abc123def4567890",
            addresses=tuple(c.address for c in changes),
        ),
    )
    s.create_work_pool(WorkPool(name="handmade"))
    yield s
    s.close()


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, api_key=KEY), base_url="http://127.0.0.1") as c:
        yield c


def login(client: TestClient) -> str:
    """Log in through the form; returns the CSRF token the pages carry."""
    response = client.post("/ui/login", data={"key": KEY, "next": "/ui/pools"})
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_with_a_key_every_page_asks_to_log_in_first(client: TestClient) -> None:
    for path in ("/ui/pools", "/ui/pools/managed", "/ui/runs", "/ui/deployments/etl/nightly", "/ui/history"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")
    assert client.get("/ui/runs/x/logs", headers={"X-WP-Live": "1"}).status_code == 401
    assert client.post("/ui/actions/pools/managed/pause").status_code == 401
    # the stylesheet is open: the login page needs it
    assert client.get("/ui/static/wp.css").status_code == 200


def test_a_wrong_key_is_refused_and_the_right_one_sets_a_strict_httponly_cookie(client: TestClient) -> None:
    wrong = client.post("/ui/login", data={"key": "guess", "next": "/ui/pools"})
    assert wrong.status_code == 401 and "not the server" in wrong.text
    assert "wp_ui_session" not in client.cookies
    right = client.post("/ui/login", data={"key": KEY, "next": "/ui/pools"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/ui/pools"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert KEY not in right.headers["set-cookie"]
    assert client.get("/ui/pools").status_code == 200


def test_login_never_redirects_off_the_ui(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/work_pools"):
        response = client.post("/ui/login", data={"key": KEY, "next": target}, follow_redirects=False)
        assert response.headers["location"] == "/ui/", target


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, store: SqlStore
) -> None:
    token = login(client)
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one character off (it may have ended in "0")
    for data, headers in (({}, {}), ({"csrf": "0" * 64}, {}), ({}, {"X-CSRF-Token": wrong})):
        response = client.post("/ui/actions/pools/handmade/pause", data=data, headers=headers)
        assert response.status_code == 403
    assert store.get_work_pool("handmade").paused is False
    ok = client.post("/ui/actions/pools/handmade/pause", data={"csrf": token}, headers={"X-WP-Fetch": "1"})
    assert ok.json() == {"ok": True, "message": "Paused work pool handmade.", "location": None}
    assert store.get_work_pool("handmade").paused is True


def test_a_session_cookie_from_another_key_is_not_accepted(store: SqlStore) -> None:
    with TestClient(create_app(store, api_key="other-key"), base_url="http://127.0.0.1") as other:
        other.post("/ui/login", data={"key": "other-key"})
        forged = other.cookies["wp_ui_session"]
    with TestClient(create_app(store, api_key=KEY), base_url="http://127.0.0.1") as c:
        c.cookies.set("wp_ui_session", forged)
        assert c.get("/ui/pools", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client: TestClient) -> None:
    token = login(client)
    client.post("/ui/logout", data={"csrf": token})
    assert client.get("/ui/pools", follow_redirects=False).status_code == 303


def test_scripts_may_read_pages_with_the_bearer_header(client: TestClient) -> None:
    page = client.get("/ui/pools", headers={"Authorization": f"Bearer {KEY}"})
    assert page.status_code == 200 and "managed" in page.text


def test_the_api_still_needs_its_token(client: TestClient) -> None:
    login(client)  # a UI session is not an API credential
    assert client.get("/work_pools").status_code == 401


def test_without_a_key_the_ui_is_open_but_actions_still_need_the_csrf_token(store: SqlStore) -> None:
    with TestClient(create_app(store, api_key=None), base_url="http://127.0.0.1") as c:
        page = c.get("/ui/pools")
        assert page.status_code == 200 and "Log out" not in page.text
        assert c.post("/ui/actions/pools/handmade/pause").status_code == 403
        assert (
            c.post("/ui/actions/pools/handmade/pause", data={"csrf": csrf_of(page.text)}).status_code == 200
        )
        assert store.get_work_pool("handmade").paused is True


def test_a_managed_pool_is_read_only_and_names_its_project(client: TestClient, store: SqlStore) -> None:
    token = login(client)
    page = client.get("/ui/pools/managed").text
    assert "Managed by project <strong>shop</strong>" in page and "change it in git" in page
    assert 'id="edit-pool"' not in page
    refused = client.post(
        "/ui/actions/pools/managed",
        data={"csrf": token, "concurrency_limit": "9"},
        headers={"X-WP-Fetch": "1"},
    )
    assert refused.status_code == 409 and "managed by project shop" in refused.json()["message"]
    assert store.get_work_pool("managed").concurrency_limit == 4
    # pausing is operational: allowed on a managed pool too
    client.post("/ui/actions/pools/managed/pause", data={"csrf": token})
    assert store.get_work_pool("managed").paused is True


def test_a_handmade_pool_can_be_edited(client: TestClient, store: SqlStore) -> None:
    token = login(client)
    assert 'id="edit-pool"' in client.get("/ui/pools/handmade").text
    client.post(
        "/ui/actions/pools/handmade", data={"csrf": token, "concurrency_limit": "3", "description": "x"}
    )
    assert store.get_work_pool("handmade").concurrency_limit == 3
    bad = client.post("/ui/actions/pools/handmade", data={"csrf": token, "concurrency_limit": "-1"})
    assert bad.status_code == 422 and "positive whole number" in bad.text


def test_secrets_are_masked_on_every_page(client: TestClient, store: SqlStore) -> None:
    token = login(client)
    created = client.post(
        "/ui/actions/deployments/etl/nightly/run",
        data={"csrf": token, "parameters": '{"db_password": "hunter2-run"}'},
        headers={"X-WP-Fetch": "1"},
    ).json()
    assert created["ok"], created
    run_page = html.unescape(client.get(created["location"]).text)
    deployment_page = html.unescape(client.get("/ui/deployments/etl/nightly").text)
    for page in (run_page, deployment_page):
        assert "hunter2" not in page
        assert "(sensitive)" in page
    assert '"region": "eu"' in run_page  # what is not secret is shown
    # the run got the real values: masking is for display only
    run = store.get_flow_run(created["location"].rsplit("/", 1)[1])
    assert run.parameters == {"region": "eu", "api_token": "hunter2-parameter", "db_password": "hunter2-run"}


def test_a_trigger_with_bad_json_says_which_field(client: TestClient) -> None:
    token = login(client)
    response = client.post(
        "/ui/actions/deployments/etl/nightly/run",
        data={"csrf": token, "parameters": "{nope"},
        headers={"X-WP-Fetch": "1"},
    )
    assert response.status_code == 422 and response.json()["message"].startswith(
        "parameters is not valid JSON"
    )


def test_history_shows_each_apply_with_its_plan(client: TestClient) -> None:
    login(client)
    page = client.get("/ui/history").text
    assert "shop" in page and "ana" in page and "abc123def456" in page
    assert "work_pool.managed" in page and "deployment.etl/nightly" in page


def test_sync_says_not_configured_until_the_store_has_sync(client: TestClient) -> None:
    login(client)
    assert "Sync is not configured" in client.get("/ui/sync").text


def test_runs_page_pages_newest_first_without_skipping_runs_at_the_same_time(
    client: TestClient, store: SqlStore
) -> None:
    login(client)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    # 120 runs, many sharing a start time (as cron runs of several deployments do)
    for i in range(120):
        run_id = str(uuid.uuid4())
        store.create_flow_run(
            FlowRun(
                id=run_id,
                name=f"paged-{i:03d}",
                flow="etl",
                deployment="etl/nightly",
                work_pool="managed",
                work_queue="default",
                state="COMPLETED",
                expected_start_time=start + timedelta(minutes=i // 7),
            )
        )
    seen: list[str] = []
    url: str | None = "/ui/runs?pool=managed"
    while url:
        page = client.get(url).text
        seen += re.findall(r">(paged-\d{3})</a>", page)
        nxt = re.search(r'href="([^"]+)" rel="next"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert len(seen) == 120 and set(seen) == {f"paged-{i:03d}" for i in range(120)}
    times = [int(name[-3:]) // 7 for name in seen]
    assert times == sorted(times, reverse=True)


def test_the_sync_page_shows_what_wp_sync_recorded(client: TestClient, store: SqlStore) -> None:
    from reconciler.store.base import SyncKey, SyncPhase, SyncStatus

    key = SyncKey(repo="file:///srv/platform.git", branch="main", path="pools")
    store.save_sync_status(
        SyncStatus(
            key=key,
            phase=SyncPhase.FAILED,
            reason="InvalidConfig",
            message="wp.yaml:7:5: work_pools[0].type: 'dokcer' is not one of process, docker, kubernetes",
            fetched_revision="0123456789abcdef0123",
            attempts=({"time": "2030-01-01T00:00:00+00:00", "revision": "0123456789ab", "result": "Failed"},),
        )
    )
    login(client)
    page = html.unescape(client.get("/ui/sync").text)
    assert "Sync is not configured" not in page
    assert "file:///srv/platform.git" in page and "Failed" in page and "InvalidConfig" in page
    assert "wp.yaml:7:5" in page  # the diagnostic a user must fix, with its position
    assert "0123456789abcdef0123" in page


def test_a_kubernetes_pool_shows_its_variables_and_the_rendered_default_job(
    client: TestClient, store: SqlStore
) -> None:
    from reconciler.engine.job_templates import default_base_job_template

    store.create_work_pool(
        WorkPool(name="k8s", type="kubernetes", base_job_template=default_base_job_template("kubernetes"))
    )
    login(client)
    page = html.unescape(client.get("/ui/pools/k8s").text)
    assert "Rendered default Job" in page and '"apiVersion": "batch/v1"' in page
    namespace_row = re.search(r"<code>namespace</code>.*?</tr>", page, re.S)
    assert namespace_row and "<code>default</code>" in namespace_row.group(0)


def test_a_run_triggered_or_a_pool_resumed_in_the_ui_wakes_the_pools_workers(client: TestClient) -> None:
    token = login(client)
    bearer = {"Authorization": f"Bearer {KEY}"}

    def generation() -> int:
        return int(client.get("/work_pools/managed/wake", headers=bearer).json()["generation"])

    before = generation()
    client.post("/ui/actions/deployments/etl/nightly/run", data={"csrf": token})
    assert generation() > before
    before = generation()
    client.post("/ui/actions/pools/managed/resume", data={"csrf": token})
    assert generation() > before


def test_sync_now_suspend_and_resume_from_the_ui_reach_the_store(client: TestClient, store: SqlStore) -> None:
    from reconciler.store.base import SyncKey, SyncPhase, SyncStatus

    key = SyncKey(repo="file:///srv/platform.git", branch="main", path=".")
    store.save_sync_status(SyncStatus(key=key, phase=SyncPhase.SYNCED))
    token = login(client)
    page = html.unescape(client.get("/ui/sync").text)
    assert "Sync now" in page and "Suspend" in page
    query = "?repo=file%3A%2F%2F%2Fsrv%2Fplatform.git&branch=main&path=."
    fetch = {"X-WP-Fetch": "1"}
    assert client.post(f"/ui/actions/sync/suspend{query}", data={"csrf": token}, headers=fetch).json()["ok"]
    status = store.get_sync_status(key)
    assert status is not None and status.suspended
    assert "Resume" in html.unescape(client.get("/ui/sync").text)
    assert client.post(f"/ui/actions/sync/now{query}", data={"csrf": token}, headers=fetch).json()["ok"]
    status = store.get_sync_status(key)
    assert status is not None and status.requested_at is not None  # a running loop passes at once
    assert client.post(f"/ui/actions/sync/resume{query}", data={"csrf": token}, headers=fetch).json()["ok"]
    status = store.get_sync_status(key)
    assert status is not None and not status.suspended
    # without the session's CSRF token nothing changes
    assert client.post(f"/ui/actions/sync/suspend{query}", data={}, headers=fetch).status_code >= 400
    status = store.get_sync_status(key)
    assert status is not None and not status.suspended


def test_the_pool_page_shows_each_workers_host_pid_and_runs_in_hand(
    client: TestClient, store: SqlStore
) -> None:
    now = datetime.now(UTC)
    store.heartbeat_worker("handmade", "w1", interval=30.0, now=now, host="box-7", pid=3131)
    run_id = str(uuid.uuid4())
    store.create_flow_run(
        FlowRun(
            id=run_id, name="r1", flow="etl", deployment="etl/nightly", work_pool="handmade",
            work_queue="default", state="SCHEDULED", expected_start_time=now,
        )
    )  # fmt: skip
    store.claim_runs("handmade", "w1", limit=1, scheduled_before=now, now=now)
    login(client)
    page = client.get("/ui/pools/handmade").text
    row = re.search(r'<tr data-worker="w1">.*?</tr>', page, re.S)
    assert row, page
    cells = dict(re.findall(r'data-field="([a-z-]+)">([^<]*)<', row.group(0)))
    assert cells == {"host": "box-7", "pid": "3131", "runs-in-hand": "1"}
