"""The GitHub REST client against an in-process fake of GitHub's API (tests/fake_github.py; no real GitHub is
reachable here): pages, the plan comment for one path, the pull request of a merge commit, and refusals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fake_github import TOKEN, FakeGitHub, serve

from reconciler.gitops.github import (
    GitHubClient,
    GitHubError,
    find_plan_comment,
    publish_plan_comment,
    pull_request_of_commit,
)
from reconciler.gitops.pr_comment import CommentHeader, comment_body

REPO = "octo/infra"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serve() as fake:
        fake.open_pull_request(5, "a" * 40)
        yield fake


def _client(fake: FakeGitHub, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(token, api_url=fake.url)


def test_the_fake_refuses_what_github_refuses(github: FakeGitHub) -> None:
    url = f"{github.url}/repos/{REPO}/issues/5/comments"
    good = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    assert httpx.get(url, headers=good).status_code == 200
    assert httpx.get(url, headers={**good, "Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url, headers={**good, "Accept": "text/html"}).status_code == 415
    assert httpx.post(url, headers=good, json={"text": "x"}).status_code == 422
    assert httpx.post(url, headers=good, json={"body": "x" * 65_537}).status_code == 422
    assert httpx.get(f"{github.url}/repos/{REPO}/issues/6/comments", headers=good).status_code == 404


def test_every_page_of_comments_is_read(github: FakeGitHub) -> None:
    for i in range(230):
        github.add_comment(5, f"comment {i}")
    with _client(github) as client:
        bodies = [c.body for c in client.issue_comments(REPO, 5)]
    assert bodies == [f"comment {i}" for i in range(230)]
    pages = github.calls("GET", r"/issues/5/comments$")
    assert len(pages) == 3
    request = pages[0]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"


def test_publish_creates_then_updates_in_place_and_leaves_other_paths(github: FakeGitHub) -> None:
    other = comment_body(CommentHeader("other", "1" * 64), "other plan")
    github.add_comment(5, other)
    with _client(github) as client:
        first, created = publish_plan_comment(
            client, REPO, 5, "./infra", comment_body(CommentHeader("infra", "2" * 64), "plan one")
        )
        assert created
        second, created = publish_plan_comment(
            client, REPO, 5, "infra", comment_body(CommentHeader("infra", "3" * 64), "plan two")
        )
        assert not created and second.id == first.id
        found = find_plan_comment(client, REPO, 5, "infra/")
    assert found is not None and found[1] == CommentHeader("infra", "3" * 64)
    assert github.bodies(5)[0] == other
    assert len(github.bodies(5)) == 2
    assert github.bodies(5)[1].endswith("plan two")


def test_an_unchanged_body_is_not_written_again(github: FakeGitHub) -> None:
    body = comment_body(CommentHeader(".", "2" * 64), "plan")
    with _client(github) as client:
        publish_plan_comment(client, REPO, 5, ".", body)
        publish_plan_comment(client, REPO, 5, ".", body)
    assert len(github.calls("POST", "comments$")) == 1
    assert github.calls("PATCH", "comments/") == []


def test_the_oldest_plan_comment_wins_over_a_copy(github: FakeGitHub) -> None:
    github.add_comment(5, comment_body(CommentHeader(".", "1" * 64), "the bot's"))
    github.add_comment(5, comment_body(CommentHeader(".", "9" * 64), "a copy posted later"))
    with _client(github) as client:
        found = find_plan_comment(client, REPO, 5, ".")
    assert found is not None and found[1].plan_hash == "1" * 64


def test_the_pull_request_of_a_merge_commit(github: FakeGitHub) -> None:
    merge = "b" * 40
    github.open_pull_request(6, "c" * 40)
    github.commits[merge] = [6]  # listed first, but not the one merged as this commit
    github.merge(5, merge)
    with _client(github) as client:
        assert pull_request_of_commit(client, REPO, merge) == 5
        assert pull_request_of_commit(client, REPO, "c" * 40) == 6  # an open PR's head: the first listed
        github.add_commit("d" * 40)
        assert pull_request_of_commit(client, REPO, "d" * 40) is None


@pytest.mark.parametrize(
    ("setup", "call", "expected"),
    [
        (
            "read-only",
            "post",
            "403 Resource not accessible by integration; the token needs the `pull-requests: write`",
        ),
        ("bad-token", "list", "401 Bad credentials; the token is missing, expired or wrong"),
        ("none", "other-repo", "404 Not Found; the token needs the `pull-requests: read`"),
        ("none", "unknown-commit", "422 No commit found for SHA"),
    ],
)
def test_refusals_are_one_clear_line(github: FakeGitHub, setup: str, call: str, expected: str) -> None:
    github.can_write = setup != "read-only"
    client = _client(github, "wrong" if setup == "bad-token" else TOKEN)
    with client, pytest.raises(GitHubError) as caught:
        if call == "post":
            client.create_issue_comment(REPO, 5, "x")
        elif call == "list":
            list(client.issue_comments(REPO, 5))
        elif call == "other-repo":
            list(client.issue_comments("octo/elsewhere", 5))
        else:
            client.pulls_of_commit(REPO, "e" * 40)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("GitHub refused ")
    assert expected in message


def test_an_unreachable_api_is_a_clear_error() -> None:
    with serve() as fake:
        url = fake.url
    with (
        GitHubClient(TOKEN, api_url=url, timeout=2) as client,
        pytest.raises(GitHubError, match="cannot reach"),
    ):
        list(client.issue_comments(REPO, 5))


def test_a_bad_repository_name_is_refused_before_any_request() -> None:
    with (
        GitHubClient(TOKEN, api_url="http://127.0.0.1:9") as client,
        pytest.raises(GitHubError, match="owner/name"),
    ):
        client.create_issue_comment("../../x", 5, "x")
