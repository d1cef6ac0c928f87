"""The GitHub REST API edge: the pull-request comment that carries a reviewed plan, and the pull request a pushed
commit came from.

Owns the HTTP calls (`GET/POST /repos/{owner}/{repo}/issues/{n}/comments`, `PATCH /repos/{owner}/{repo}/issues/
comments/{id}`, `GET /repos/{owner}/{repo}/commits/{sha}/pulls`), following `Link: rel="next"` pages, and turning
GitHub's refusals into one-line GitHubErrors that name the permission a token lacks. Must never decide what a
comment says (`gitops.pr_comment` does) nor read the environment (the caller passes the API URL and token).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from reconciler.errors import WpError
from reconciler.gitops.pr_comment import CommentHeader, normalize_path, parse_header

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
PER_PAGE = 100  # GitHub's maximum: fewer round trips on a long pull request
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")

READ_PULLS = "`pull-requests: read`"
WRITE_PULLS = "`pull-requests: write`"
READ_COMMITS = "`contents: read` and `pull-requests: read`"


class GitHubError(WpError):
    """GitHub refused a request or could not be reached."""


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    author: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str
    merged: bool
    merge_commit_sha: str | None


class GitHubClient:
    """A token's view of the REST API. Pass `http` to reuse a client (its base URL and headers are set here)."""

    def __init__(
        self, token: str, *, api_url: str, http: httpx.Client | None = None, timeout: float = 30.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": MEDIA_TYPE,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "wp-gitops",
        }
        self._http = http or httpx.Client(timeout=timeout)
        self._http.headers.update(headers)

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------------------- endpoints

    def issue_comments(self, repo: str, number: int) -> Iterator[IssueComment]:
        """Every comment of issue or pull request `number`, oldest first, page by page."""
        url: str | None = f"{self.api_url}/repos/{_repo(repo)}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        while url is not None:
            response = self._request("GET", url, params=params, needs=READ_PULLS)
            for item in _json_list(response):
                yield _comment(item)
            url, params = self._next_page(response), None  # the next link carries its own query

    def create_issue_comment(self, repo: str, number: int, body: str) -> IssueComment:
        url = f"{self.api_url}/repos/{_repo(repo)}/issues/{number}/comments"
        return _comment(_json_object(self._request("POST", url, json={"body": body}, needs=WRITE_PULLS)))

    def update_issue_comment(self, repo: str, comment_id: int, body: str) -> IssueComment:
        url = f"{self.api_url}/repos/{_repo(repo)}/issues/comments/{comment_id}"
        return _comment(_json_object(self._request("PATCH", url, json={"body": body}, needs=WRITE_PULLS)))

    def pulls_of_commit(self, repo: str, sha: str) -> list[PullRequest]:
        if not _SHA.match(sha):
            raise GitHubError(f"{sha!r} is not a commit sha")
        url = f"{self.api_url}/repos/{_repo(repo)}/commits/{sha}/pulls"
        response = self._request("GET", url, params={"per_page": PER_PAGE}, needs=READ_COMMITS)
        return [
            PullRequest(
                number=int(item["number"]),
                state=str(item.get("state") or ""),
                merged=bool(item.get("merged_at")),
                merge_commit_sha=item.get("merge_commit_sha"),
            )
            for item in _json_list(response)
        ]

    # -------------------------------------------------------------------------------------------- transport

    def _next_page(self, response: httpx.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        # The token goes with every request: never follow a link off the API it was given for.
        if url and url.startswith(self.api_url + "/"):
            return str(url)
        return None

    def _request(
        self,
        method: str,
        url: str,
        *,
        needs: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        route = f"{method} {url.removeprefix(self.api_url).split('?')[0]}"
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.HTTPError as exc:
            raise GitHubError(f"cannot reach the GitHub API at {self.api_url} ({route}): {exc}") from exc
        if response.is_success:
            return response
        raise GitHubError(_refusal(route, response, needs), status=response.status_code)


def _refusal(route: str, response: httpx.Response, needs: str) -> str:
    """One line: what was refused, GitHub's status and message, and what to do about it."""
    status = response.status_code
    try:
        message = str(response.json().get("message") or "")
    except (ValueError, AttributeError):
        message = response.text[:200]
    message = " ".join(message.split()) or response.reason_phrase
    head = f"GitHub refused {route}: {status} {message}"
    if status == 401:
        return f"{head}; the token is missing, expired or wrong (the action's `github-token` input)"
    if status == 403 and "rate limit" in message.lower():
        return f"{head}; wait for the rate limit to reset"
    if status in (403, 404):
        return (
            f"{head}; the token needs the {needs} permission "
            "(a workflow's `permissions:` block, or the token's scopes)"
        )
    return head


def _repo(repo: str) -> str:
    if not _REPO.match(repo):
        raise GitHubError(f"{repo!r} is not a repository name of the form owner/name")
    return repo


def _json_list(response: httpx.Response) -> list[Mapping[str, Any]]:
    data = response.json()
    if not isinstance(data, list):
        raise GitHubError(
            f"GitHub answered {response.request.url.path} with {type(data).__name__}, not a list"
        )
    return [item for item in data if isinstance(item, Mapping)]


def _json_object(response: httpx.Response) -> Mapping[str, Any]:
    data = response.json()
    if not isinstance(data, Mapping):
        raise GitHubError(
            f"GitHub answered {response.request.url.path} with {type(data).__name__}, not an object"
        )
    return data


def _comment(item: Mapping[str, Any]) -> IssueComment:
    user = item.get("user")
    return IssueComment(
        id=int(item["id"]),
        body=str(item.get("body") or ""),
        author=user.get("login") if isinstance(user, Mapping) else None,
        url=item.get("html_url"),
    )


# ------------------------------------------------------------------------------------------ the plan comment


def find_plan_comment(
    client: GitHubClient, repo: str, number: int, path: str
) -> tuple[IssueComment, CommentHeader] | None:
    """The wp plan comment for project `path` on pull request `number`. The oldest one wins: it is the one
    wp created and keeps updating, so a later comment that copies the header cannot stand in for it."""
    wanted = normalize_path(path)
    for comment in client.issue_comments(repo, number):
        header = parse_header(comment.body)
        if header is not None and header.path == wanted:
            return comment, header
    return None


def publish_plan_comment(
    client: GitHubClient, repo: str, number: int, path: str, body: str
) -> tuple[IssueComment, bool]:
    """Create the plan comment for `path`, or update it in place; and whether it was created."""
    found = find_plan_comment(client, repo, number, path)
    if found is None:
        return client.create_issue_comment(repo, number, body), True
    comment, _ = found
    if comment.body == body:  # the same plan again: nothing to write, and no "edited" mark on the PR
        return comment, False
    return client.update_issue_comment(repo, comment.id, body), False


def pull_request_of_commit(client: GitHubClient, repo: str, sha: str) -> int | None:
    """The pull request that `sha` came from: the merged (or closed) one whose merge commit it is, else the first
    listed."""
    pulls = client.pulls_of_commit(repo, sha)
    for pr in pulls:
        closed = pr.merged or pr.state == "closed"
        if closed and pr.merge_commit_sha and pr.merge_commit_sha.lower() == sha.lower():
            return pr.number
    return pulls[0].number if pulls else None
