"""`wp ci` as the GitHub Action runs it: plan on a pull request, apply after merge, drift on a schedule.

GitHub is an in-process fake of its REST API (tests/fake_github.py), which stands in for GitHub because no real
GitHub is reachable here; it speaks the real paths, status codes and JSON, and checks the token and headers.
Projects live in real git repositories in temp dirs, and the store is this test's own SQLite file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest
from actions_runner import Step, github_step, outside_github, pull_request_event, push_event
from fake_github import FakeGitHub, serve
from wp_cli import ProjectWriter, Wp, WpResult

from reconciler.gitops.pr_comment import CommentHeader, comment_body, parse_header
from reconciler.store.sql import SqlStore

PROJECT = """\
project: shop
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
    queues:
      - {name: urgent, priority: 1}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p, work_queue_name: urgent}
"""
PR = 7
OUTPUT_KEYS = {"changes", "to-add", "to-change", "to-destroy", "plan-hash", "failure-reason"}


@dataclass
class Repo:
    """The repository of the workflow: `infra/` holds the project; the tests run from its root."""

    root: Path
    git: git.Repo

    @property
    def head(self) -> str:
        return self.git.head.commit.hexsha

    def edit(self, old: str, new: str) -> None:
        path = self.root / "infra" / "wp.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def commit(self, message: str) -> str:
        self.git.git.add(A=True)
        self.git.index.commit(message)
        return self.head


@pytest.fixture
def repo(tmp_path: Path, project: ProjectWriter, monkeypatch: pytest.MonkeyPatch) -> Repo:
    project("repo/infra", PROJECT)
    root = tmp_path / "repo"
    handle = git.Repo.init(root, initial_branch="main")
    with handle.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.com")
    made = Repo(root, handle)
    made.commit("the shop's work pools")
    monkeypatch.chdir(root)
    return made


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serve() as fake:
        yield fake


def _ci(wp: Wp, step: Step, mode: str, *extra: str) -> WpResult:
    return wp("ci", "--mode", mode, "--path", "infra", *extra, env=step.env)


def _plan_on_pr(wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path) -> tuple[WpResult, Step]:
    if PR not in github.pulls:
        github.open_pull_request(PR, repo.head)
    step = github_step(tmp_path, github, "pull_request", pull_request_event(PR, repo.head), repo.head)
    return _ci(wp, step, "plan"), step


def _merge(repo: Repo, github: FakeGitHub) -> str:
    sha = repo.commit(f"Merge pull request #{PR}")
    github.merge(PR, sha)
    return sha


def _apply_after_merge(
    wp: Wp, github: FakeGitHub, tmp_path: Path, sha: str, *extra: str
) -> tuple[WpResult, Step]:
    step = github_step(tmp_path, github, "push", push_event(sha), sha)
    return _ci(wp, step, "apply", *extra), step


def _plan_comments(github: FakeGitHub) -> list[str]:
    return [b for b in github.bodies(PR) if parse_header(b) is not None]


# --------------------------------------------------------------------------------------------- pull request


def test_a_pull_request_plan_posts_one_comment_outputs_and_summary(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    result, step = _plan_on_pr(wp, repo, github, tmp_path)
    assert result.code == 0, result.stderr
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in result.stdout
    outputs = step.outputs()
    assert set(outputs) == OUTPUT_KEYS
    assert {k: v for k, v in outputs.items() if k != "plan-hash"} == {
        "changes": "true",
        "to-add": "3",
        "to-change": "0",
        "to-destroy": "0",
        "failure-reason": "",
    }
    assert outputs["plan-hash"] == wp("plan", "infra", "--format", "json").json()["plan_hash"]
    [body] = github.bodies(PR)
    assert parse_header(body) == CommentHeader("infra", outputs["plan-hash"])
    assert "### wp plan: project `shop`" in body
    assert "| `+` | `work_pool.p` | create |" in body
    assert f"plan of `infra` at {repo.head[:7]}" in body
    assert f"Posted the plan comment on pull request #{PR}" in result.stderr
    summary = step.summary_text()
    assert "### wp plan: project `shop`" in summary
    assert "| `+` | `deployment.say-hello/d` | create |" in summary


def test_a_second_plan_updates_the_same_comment_among_many(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    github.open_pull_request(PR, repo.head)
    for i in range(120):  # more than one page of 100 (and GitHub's default 30): the plan comment is on page 2
        github.add_comment(PR, f"review remark {i}")
    assert _plan_on_pr(wp, repo, github, tmp_path)[0].code == 0
    [first] = _plan_comments(github)
    repo.edit("concurrency_limit: 4", "concurrency_limit: 6")
    repo.commit("raise the limit")
    result, step = _plan_on_pr(wp, repo, github, tmp_path)
    assert result.code == 0, result.stderr
    assert "Updated the plan comment" in result.stderr
    [second] = _plan_comments(github)
    assert len(github.bodies(PR)) == 121
    assert "concurrency_limit = 6" in second and "concurrency_limit = 4" in first
    header = parse_header(second)
    assert header is not None and header.plan_hash == step.outputs()["plan-hash"]
    assert len(github.calls("POST", r"/issues/7/comments$")) == 1
    assert len(github.calls("PATCH", r"/issues/comments/\d+$")) == 1
    assert any(r.query.get("page") == ["2"] for r in github.calls("GET", r"/issues/7/comments$"))


def test_a_plan_comment_for_another_path_is_left_alone(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    github.open_pull_request(PR, repo.head)
    staging = comment_body(CommentHeader("staging", "5" * 64), "### wp plan: project `staging`")
    github.add_comment(PR, staging)
    assert _plan_on_pr(wp, repo, github, tmp_path)[0].code == 0
    bodies = github.bodies(PR)
    assert bodies[0] == staging
    headers = [parse_header(b) for b in bodies]
    assert [h.path for h in headers if h is not None] == ["staging", "infra"]
    assert github.calls("PATCH", r"/issues/comments/") == []


def test_plan_comments_can_be_turned_off(wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path) -> None:
    github.open_pull_request(PR, repo.head)
    step = github_step(tmp_path, github, "pull_request", pull_request_event(PR, repo.head), repo.head)
    assert _ci(wp, step, "plan", "--no-comment").code == 0
    assert github.requests == []
    assert step.outputs()["changes"] == "true"


def test_an_invalid_config_fails_and_the_comment_says_why(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    repo.edit("concurrency_limit: 4", "concurrency_limit: lots")
    repo.commit("oops")
    result, step = _plan_on_pr(wp, repo, github, tmp_path)
    assert result.code == 1
    assert "concurrency_limit" in result.stderr
    outputs = step.outputs()
    assert outputs["failure-reason"] == "invalid-config"
    assert outputs["changes"] == "false" and outputs["plan-hash"] == ""
    [body] = github.bodies(PR)
    assert parse_header(body) == CommentHeader("infra", None)
    assert "invalid configuration" in body
    assert re.search(r"- `wp\.yaml:\d+:\d+` .*\(at `work_pools\[0\]\.concurrency_limit`\)", body), body
    assert "invalid configuration" in step.summary_text()
    # Fixed on the next push: the same comment now shows the plan.
    repo.edit("concurrency_limit: lots", "concurrency_limit: 4")
    repo.commit("fix")
    fixed, step = _plan_on_pr(wp, repo, github, tmp_path)
    assert fixed.code == 0
    [body] = github.bodies(PR)
    assert "Plan: 3 to add" in body and parse_header(body) == CommentHeader(
        "infra", step.outputs()["plan-hash"]
    )


def test_a_token_that_may_not_comment_gives_a_clear_error(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    github.can_write = False
    result, step = _plan_on_pr(wp, repo, github, tmp_path)
    assert result.code == 1
    assert "403 Resource not accessible by integration" in result.stderr
    assert "`pull-requests: write` permission" in result.stderr
    assert step.outputs()["failure-reason"] == "github-error"
    assert step.outputs()["plan-hash"]  # the plan itself was made, and is in the summary
    assert "work_pool.p" in step.summary_text()
    assert github.bodies(PR) == []


# ------------------------------------------------------------------------------------------ apply on merge


def test_apply_after_merge_applies_the_reviewed_plan(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    planned, pr_step = _plan_on_pr(wp, repo, github, tmp_path)
    assert planned.code == 0
    merge_sha = _merge(repo, github)
    result, step = _apply_after_merge(wp, github, tmp_path, merge_sha)
    assert result.code == 0, result.stderr
    assert f"The plan is the one reviewed on pull request #{PR}." in result.stderr
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in result.stdout
    outputs = step.outputs()
    assert outputs["failure-reason"] == "" and outputs["to-add"] == "3"
    assert outputs["plan-hash"] == pr_step.outputs()["plan-hash"]
    assert "Apply complete!" in step.summary_text()
    assert wp("plan", "infra", "--detailed-exitcode").code == 0
    [record] = wp("history", "--json").json()
    assert record["actor"] == f"github-actions:{github.repository}@{merge_sha}"
    assert (record["git_commit"], record["git_branch"], record["git_dirty"]) == (merge_sha, "main", False)


def test_apply_refuses_a_plan_that_changed_since_review(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path, live_store: SqlStore
) -> None:
    assert _plan_on_pr(wp, repo, github, tmp_path)[0].code == 0
    repo.edit("concurrency_limit: 4", "concurrency_limit: 40")  # e.g. another PR merged first
    merge_sha = _merge(repo, github)
    result, step = _apply_after_merge(wp, github, tmp_path, merge_sha)
    assert result.code == 3
    assert f"the plan differs from the one reviewed on pull request #{PR}" in result.stderr
    assert "nothing was applied" in result.stderr
    assert step.outputs()["failure-reason"] == "plan-changed"
    assert "apply refused" in step.summary_text()
    assert live_store.list_work_pools() == []
    assert wp("history", "--json").json() == []


def test_apply_needs_a_reviewed_plan_unless_auto_approved(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path, live_store: SqlStore
) -> None:
    github.add_commit(repo.head)  # pushed straight to main: no pull request
    result, step = _apply_after_merge(wp, github, tmp_path, repo.head)
    assert result.code == 1
    assert "did not come from a pull request" in result.stderr and "--auto-approve" in result.stderr
    assert step.outputs()["failure-reason"] == "no-reviewed-plan"

    github.open_pull_request(PR, repo.head)  # a pull request that never got a plan comment
    result, step = _apply_after_merge(wp, github, tmp_path, _merge(repo, github))
    assert result.code == 1
    assert f"pull request #{PR} has no wp plan comment for `infra`" in result.stderr
    assert step.outputs()["failure-reason"] == "no-reviewed-plan"
    assert live_store.list_work_pools() == []

    asked = len(github.requests)
    result, step = _apply_after_merge(wp, github, tmp_path, repo.head, "--auto-approve")
    assert result.code == 0, result.stderr
    assert step.outputs()["failure-reason"] == ""
    assert [p.name for p in live_store.list_work_pools()] == ["p"]
    assert len(github.requests) == asked  # auto-approved: GitHub is not asked


def test_apply_with_nothing_to_change_needs_no_review(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    assert wp("apply", "infra", "--auto-approve").code == 0
    github.add_commit(repo.head)
    result, step = _apply_after_merge(wp, github, tmp_path, repo.head)
    assert result.code == 0, result.stderr
    assert step.outputs()["changes"] == "false" and step.outputs()["failure-reason"] == ""
    assert "Nothing to apply" in step.summary_text()


def test_apply_while_another_holds_the_lock(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path, live_store: SqlStore
) -> None:
    live_store.acquire_lock("alice@laptop", "apply shop")
    result, step = _apply_after_merge(wp, github, tmp_path, repo.head, "--auto-approve")
    assert result.code == 3
    assert "locked by alice@laptop" in result.stderr
    assert step.outputs()["failure-reason"] == "state-locked"
    assert live_store.list_work_pools() == []


# ------------------------------------------------------------------------------------------------- drift


def test_drift_exits_2_after_a_hand_change_and_0_when_clean(
    wp: Wp, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    assert wp("apply", "infra", "--auto-approve").code == 0
    clean_step = github_step(tmp_path, github, "schedule", {"schedule": "0 6 * * *"}, repo.head)
    clean = _ci(wp, clean_step, "drift")
    assert clean.code == 0, clean.stderr
    assert clean_step.outputs()["changes"] == "false"
    assert "No drift" in clean_step.summary_text()

    assert wp("work-pool", "set-concurrency-limit", "p", "9").code == 0
    step = github_step(tmp_path, github, "schedule", {"schedule": "0 6 * * *"}, repo.head)
    drifted = _ci(wp, step, "drift")
    assert drifted.code == 2
    assert "concurrency_limit = 4 -> 9" in drifted.stdout
    outputs = step.outputs()
    assert (outputs["changes"], outputs["to-change"], outputs["failure-reason"]) == ("true", "1", "")
    assert "- `work_pool.p` was changed outside wp" in step.summary_text()
    assert github.requests == []  # drift reports through the run, never on a pull request


# ---------------------------------------------------------------------------------------- outside GitHub


def test_outside_github_it_plans_and_prints(wp: Wp, repo: Repo) -> None:
    env = outside_github()
    result = wp("ci", "--mode", "plan", "--path", "infra", env=env)
    assert result.code == 0, result.stderr
    assert "Plan: 3 to add" in result.stdout
    as_json = wp("ci", "--mode", "plan", "--path", "./infra/", "--json", env=env)
    assert as_json.code == 0
    outputs = json.loads(as_json.stdout)
    assert set(outputs) == OUTPUT_KEYS
    assert outputs["changes"] == "true" and outputs["failure-reason"] == ""
    refused = wp("ci", "--mode", "apply", "--path", "infra", "--json", env=env)
    assert refused.code == 1
    assert json.loads(refused.stdout)["failure-reason"] == "no-reviewed-plan"
