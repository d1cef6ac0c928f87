"""Continuous sync as a user runs it: `wp sync start` as a process, and `wp server start` with WP_SYNC_REPO,
its webhook and /metrics, against a real git remote on disk."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from git_remote import FLOW, Remote, make_remote, project_yaml
from prometheus_client.parser import text_string_to_metric_families

from reconciler.store.base import SyncKey
from reconciler.store.sql import SqlStore
from tests.wp_server import free_port

pytestmark = pytest.mark.slow

WP = str(Path(sys.executable).parent / "wp")
KEY = "e2e-key"
SECRET = "e2e-webhook-secret"


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    made = make_remote(tmp_path)
    yield made
    made.clone.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    return env | {"WP_HOME": str(tmp_path / "home")} | extra


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {timeout} s: {what}")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_sync_process_applies_each_push_within_an_interval(remote: Remote, tmp_path: Path) -> None:
    remote.commit({"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW}, "first")
    store = SqlStore(f"sqlite:///{tmp_path / 'home' / 'wp.db'}")
    key = SyncKey(remote.url, "main", ".")
    proc = subprocess.Popen(
        [WP, "sync", "start", "--repo", remote.url, "--interval", "0.3"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _until(lambda: (s := store.get_sync_status(key)) and s.applied_revision, 120, "the first apply")
        pushed = remote.commit({"wp.yaml": project_yaml({"p": 9})}, "raise the limit")
        started = time.monotonic()
        _until(lambda: store.get_sync_status(key).applied_revision == pushed, 15, "the push applied")  # type: ignore[union-attr]
        elapsed = time.monotonic() - started
        assert store.get_work_pool("p").concurrency_limit == 9
        print(f"push to applied, interval 0.3 s: {elapsed:.2f} s")
        assert elapsed < 10  # a pass on a loaded machine, far from the interval
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert "wp sync: stopped." in err and "raise the limit" in out and "Traceback" not in out + err
    assert [r.git_message for r in store.list_history()] == ["raise the limit", "first"]
    store.close()


def _signed_push(remote: Remote, branch: str = "main") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"ref": f"refs/heads/{branch}", "repository": {"clone_url": remote.bare.as_uri()}}
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}


def test_server_runs_the_sync_loop_and_a_webhook_applies_at_once(remote: Remote, tmp_path: Path) -> None:
    first = remote.commit({"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW}, "first")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(
        tmp_path,
        WP_API_KEY=KEY,
        WP_SYNC_REPO=remote.url,
        WP_SYNC_INTERVAL="600",  # only the first pass and the webhook can apply anything here
        WP_SYNC_WEBHOOK_SECRET=SECRET,
    )
    proc = subprocess.Popen(
        [WP, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    auth = {"Authorization": f"Bearer {KEY}"}

    def sync_status() -> dict[str, Any] | None:
        try:
            shown = httpx.get(f"{url}/sync", headers=auth, timeout=2).json()
        except httpx.HTTPError:
            return None
        return shown[0] if shown else None

    try:
        _until(lambda: (s := sync_status()) and s["applied_revision"] == first, 120, "the first pass")
        pushed = remote.commit({"wp.yaml": project_yaml({"p": 2})}, "lower the limit")
        bad_body, bad_headers = _signed_push(remote)
        bad_headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        assert httpx.post(f"{url}/sync/webhook", content=bad_body, headers=bad_headers).status_code == 401
        elsewhere_body, elsewhere_headers = _signed_push(remote, "feature")
        assert (
            httpx.post(f"{url}/sync/webhook", content=elsewhere_body, headers=elsewhere_headers).status_code
            == 404
        )
        time.sleep(1.0)
        assert sync_status()["applied_revision"] == first  # type: ignore[index]  # refused hooks changed nothing

        body, headers = _signed_push(remote)
        started = time.monotonic()
        assert httpx.post(f"{url}/sync/webhook", content=body, headers=headers).status_code == 200
        _until(lambda: (s := sync_status()) and s["applied_revision"] == pushed, 15, "the webhook's pass")
        elapsed = time.monotonic() - started
        print(f"webhook to applied: {elapsed:.2f} s")
        assert elapsed < 10  # a pass on a loaded machine, far from the interval

        metrics = httpx.get(f"{url}/metrics", headers=auth, timeout=5)
        assert metrics.status_code == 200
        samples = {
            (s.name, s.labels.get("phase") or s.labels.get("outcome")): s.value
            for family in text_string_to_metric_families(metrics.text)
            for s in family.samples
        }
        assert samples[("wp_sync_phase", "Synced")] == 1
        assert samples[("wp_sync_passes_total", "applied")] == 2
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 401
    finally:
        _, err = _stop(proc)
    assert "wp sync: following" in err and "Traceback" not in err
