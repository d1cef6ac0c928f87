"""An in-process stand-in for the part of the GitHub REST API that `wp ci` uses, served on 127.0.0.1.

It stands in for GitHub because no real GitHub is reachable from these tests. It speaks the real paths, status
codes and JSON shapes: `GET/POST /repos/{owner}/{repo}/issues/{n}/comments` (paginated with `Link` headers,
`per_page` default 30, at most 100), `PATCH /repos/{owner}/{repo}/issues/comments/{id}` and
`GET /repos/{owner}/{repo}/commits/{sha}/pulls`. Like GitHub it refuses a missing or wrong token (401), an
`Accept` it does not serve (415), an unknown API version (400), a body that is not `{"body": "..."}` or is over
65,536 characters (422), an unknown repository, issue or comment (404), an unknown commit (422), and a write
with a token that may only read (403 "Resource not accessible by integration").
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_fake_token_for_tests"
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
MAX_BODY = 65_536

_COMMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_COMMENT = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
_COMMIT_PULLS = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-fA-F]{7,64})/pulls$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    repository: str = "octo/infra"
    token: str = TOKEN
    can_write: bool = True  # False: the token lacks `pull-requests: write`
    url: str = ""
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment, with "issue"
    commits: dict[str, list[int]] = field(default_factory=dict)  # sha -> pull request numbers
    requests: list[Request] = field(default_factory=list)
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------------------------------ test helpers

    def open_pull_request(self, number: int, head_sha: str) -> None:
        self.pulls[number] = {
            "number": number,
            "state": "open",
            "title": f"change #{number}",
            "merged_at": None,
            "merge_commit_sha": None,
            "head": {"sha": head_sha},
            "html_url": f"{self.url}/{self.repository}/pull/{number}",
        }
        self.commits.setdefault(head_sha, []).append(number)

    def merge(self, number: int, merge_sha: str) -> None:
        """The pull request is merged: `merge_sha` is the commit on the base branch."""
        self.pulls[number] |= {"state": "closed", "merged_at": _now(), "merge_commit_sha": merge_sha}
        self.commits.setdefault(merge_sha, []).append(number)

    def add_commit(self, sha: str) -> None:
        """A commit pushed straight to the branch: no pull request."""
        self.commits.setdefault(sha, [])

    def add_comment(self, number: int, body: str, user: dict[str, Any] | None = None) -> int:
        with self._lock:
            return self._create(number, body, user or {"login": "a-reviewer", "id": 7, "type": "User"})["id"]

    def bodies(self, number: int) -> list[str]:
        return [
            c["body"] for c in sorted(self.comments.values(), key=lambda c: c["id"]) if c["issue"] == number
        ]

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # -------------------------------------------------------------------------------------------- behaviour

    def _create(self, number: int, body: str, user: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        now = _now()
        comment = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "url": f"{self.url}/repos/{self.repository}/issues/comments/{cid}",
            "html_url": f"{self.url}/{self.repository}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.url}/repos/{self.repository}/issues/{number}",
            "body": body,
            "user": user,
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "issue": number,
        }
        self.comments[cid] = comment
        return comment

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query)
        with self._lock:
            self.requests.append(Request(method, path, query, headers))
            refused = self._check_headers(headers)
            if refused is not None:
                return refused
            if m := _COMMENTS.match(path):
                repo, number = m.group(1), int(m.group(2))
                if repo != self.repository or number not in self.pulls:
                    return _error(404, "Not Found")
                if method == "GET":
                    return self._list(path, query, number)
                if method == "POST":
                    body = self._body(headers, raw)
                    if isinstance(body, tuple):
                        return body
                    comment = self._create(number, body, BOT)
                    return 201, _public(comment), {"Location": comment["url"]}
                return _error(404, "Not Found")
            if m := _COMMENT.match(path):
                comment = self.comments.get(int(m.group(2)))
                if m.group(1) != self.repository or comment is None:
                    return _error(404, "Not Found")
                if method != "PATCH":
                    return _error(404, "Not Found")
                body = self._body(headers, raw)
                if isinstance(body, tuple):
                    return body
                comment |= {"body": body, "updated_at": _now()}
                return 200, _public(comment), {}
            if (m := _COMMIT_PULLS.match(path)) and method == "GET":
                if m.group(1) != self.repository:
                    return _error(404, "Not Found")
                sha = m.group(2).lower()
                if sha not in self.commits:
                    return _error(422, f"No commit found for SHA: {sha}")
                return 200, [self.pulls[n] for n in self.commits[sha]], {}
            return _error(404, "Not Found")

    def _check_headers(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]] | None:
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or given != self.token:
            return _error(401, "Bad credentials")
        accept = headers.get("accept", "")
        if not any(t in accept for t in ("application/vnd.github+json", "application/json", "*/*")):
            return _error(415, f"Unsupported 'Accept' header: {accept!r}")
        version = headers.get("x-github-api-version")
        if version is not None and version != "2022-11-28":
            return _error(400, f"API version {version!r} is not supported.")
        return None

    def _body(self, headers: dict[str, str], raw: bytes) -> str | tuple[int, Any, dict[str, str]]:
        if not self.can_write:
            return _error(403, "Resource not accessible by integration")
        if "application/json" not in headers.get("content-type", ""):
            return _error(415, "Unsupported 'Content-Type'; expected application/json")
        try:
            data = json.loads(raw)
        except ValueError:
            return _error(400, "Problems parsing JSON")
        if not isinstance(data, dict) or not isinstance(data.get("body"), str) or set(data) != {"body"}:
            return _error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        if len(data["body"]) > MAX_BODY:
            return _error(422, "Validation Failed: body is too long (maximum is 65536 characters)")
        return str(data["body"])

    def _list(self, path: str, query: dict[str, list[str]], number: int) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            return _error(422, "Invalid per_page or page")
        items = [
            _public(c) for c in sorted(self.comments.values(), key=lambda c: c["id"]) if c["issue"] == number
        ]
        last = max(1, -(-len(items) // per_page))
        links = []
        base = f"{self.url}{path}?per_page={per_page}&page="
        if page < last:
            links += [f'<{base}{page + 1}>; rel="next"', f'<{base}{last}>; rel="last"']
        if page > 1:
            links += [f'<{base}{page - 1}>; rel="prev"', f'<{base}1>; rel="first"']
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, items[(page - 1) * per_page : page * per_page], headers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comment.items() if k != "issue"}


def _error(status: int, message: str) -> tuple[int, Any, dict[str, str]]:
    return status, {"message": message, "status": str(status)}, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.server.fake.handle(self.command, self.path, headers, raw)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def serve(fake: FakeGitHub | None = None) -> Iterator[FakeGitHub]:
    """Serve `fake` (a new one by default) on a free port of 127.0.0.1 until the block ends."""
    fake = fake or FakeGitHub()
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
