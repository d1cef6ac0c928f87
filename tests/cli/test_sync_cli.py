"""`wp sync start --once | status | suspend | resume | now` on the command line, against a real git remote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from git_remote import FLOW, Remote, make_remote, project_yaml
from wp_cli import Wp


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    made = make_remote(tmp_path)
    yield made
    made.clone.close()


def test_once_applies_and_status_and_history_show_the_revision(wp: Wp, remote: Remote) -> None:
    sha = remote.commit({"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW}, "first pools")
    result = wp("sync", "start", "--repo", remote.url, "--once")
    assert result.code == 0, result.stdout + result.stderr
    assert "Synced" in result.stdout and f"applied {sha[:10]}" in result.stdout
    assert "Ada Lovelace <ada@example.org>: first pools" in result.stdout
    [status] = wp("sync", "status", "--json").json()
    assert status["phase"] == "Synced" and status["applied_revision"] == sha
    assert status["repo"] == remote.url and status["branch"] == "main" and status["path"] == "."
    assert status["last_plan"] == {"add": 2, "change": 0, "destroy": 0}
    [record] = wp("history", "--json").json()
    assert record["git_commit"] == sha and record["git_message"] == "first pools"
    assert record["git_author"] == "Ada Lovelace <ada@example.org>"
    text = wp("sync", "status").stdout
    assert "Synced (Applied)" in text and sha[:10] in text
    again = wp("sync", "start", "--repo", remote.url, "--once")
    assert again.code == 0 and f"up to date at {sha[:10]}" in again.stdout


def test_an_invalid_revision_exits_1_with_file_and_line(wp: Wp, remote: Remote) -> None:
    remote.commit({"wp.yaml": "project: demo\nwork_pools:\n  - name: p\n    type: 7\n"}, "broken")
    result = wp("sync", "start", "--repo", remote.url, "--once")
    assert result.code == 1
    assert "Failed" in result.stdout and "wp.yaml:4:" in result.stdout
    [status] = wp("sync", "status", "--json").json()
    assert status["phase"] == "Failed" and status["reason"] == "InvalidConfig"
    assert status["message"].startswith("wp.yaml:4:")


def test_unreachable_git_exits_1_and_stores_nothing(wp: Wp, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.git"
    result = wp("sync", "start", "--repo", missing, "--once")
    assert result.code == 1 and "cannot fetch" in result.stdout and "nothing was changed" in result.stdout
    assert wp("sync", "status", "--json").json() == []
    assert "No sync has run" in wp("sync", "status").stdout


def test_controls(wp: Wp, remote: Remote) -> None:
    now = wp("sync", "now")
    assert now.code == 1 and "wp sync start --repo" in now.stderr
    remote.commit({"wp.yaml": project_yaml({"p": 4}), "flows/hello.py": FLOW}, "first")
    assert wp("sync", "start", "--repo", remote.url, "--once").code == 0
    suspended = wp("sync", "suspend")
    assert suspended.code == 0 and f"suspended: {remote.url}@main" in suspended.stdout
    later = remote.commit({"wp.yaml": project_yaml({"p": 5})}, "second")
    result = wp("sync", "start", "--repo", remote.url, "--once")
    assert result.code == 0 and "Suspended" in result.stdout
    [status] = wp("sync", "status", "--json").json()
    assert status["suspended"] and status["fetched_revision"] == later and status["applied_revision"] != later
    assert wp("sync", "resume", "--repo", remote.url).code == 0
    assert wp("sync", "start", "--repo", remote.url, "--once").code == 0
    assert wp("sync", "status", "--json").json()[0]["applied_revision"] == later
    other = wp("sync", "now", "--repo", remote.url, "--branch", "elsewhere")
    assert other.code == 1 and "no sync of" in other.stderr
