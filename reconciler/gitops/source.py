"""The git side of a continuous sync: a wp-owned clone of the watched branch.

Owns `GitSource`: one cache directory per (repository, branch) under the sync's cache root, fetched with
GitPython and checked out (detached, cleaned) at the branch's newest commit, held under a file lock while the
caller plans from it, so two loops on one machine never check out under each other. Sources: a local path,
`file://`, HTTPS (a token from `WP_SYNC_GIT_TOKEN` is sent as a header through git's environment, never
written into the clone's config), or SSH with the usual git settings (`GIT_SSH_COMMAND`, ~/.ssh). Every git
failure becomes GitFetchError with the token masked. Must never touch the store.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import GitFetchError
from reconciler.gitops.repo import commit_author, first_line

TOKEN_VARIABLE = "WP_SYNC_GIT_TOKEN"
FETCH_TIMEOUT_S = 120.0  # a remote that accepts the connection but never answers must not stall the loop
TRACKING_REF = "refs/wp-sync/head"


@dataclass(frozen=True)
class Revision:
    """The fetched head of the branch, checked out at `checkout`."""

    sha: str
    author: str
    message: str
    checkout: Path

    @property
    def short(self) -> str:
        return self.sha[:10]


def remote_url(repo: str) -> str:
    """What git fetches from: URLs (`scheme://`, `user@host:path`) as given, a local path made absolute."""
    if "://" in repo or (":" in repo and "@" in repo.split(":", 1)[0]):
        return repo
    return str(Path(repo).expanduser().resolve())


def _git_env(url: str, env: Mapping[str, str]) -> dict[str, str]:
    """Variables for the git processes: never prompt; an HTTPS token as an extra header (not on disk)."""
    out = {"GIT_TERMINAL_PROMPT": "0"}
    token = env.get(TOKEN_VARIABLE)
    if token and url.startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        out |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return out


def _masked(text: str, env: Mapping[str, str]) -> str:
    token = env.get(TOKEN_VARIABLE)
    return text.replace(token, "(sensitive)") if token else text


def _git_error(exc: git.GitCommandError, url: str, env: Mapping[str, str]) -> GitFetchError:
    stderr = (exc.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = "; ".join(lines[-3:]) or str(exc)
    return GitFetchError(f"cannot fetch {url}: {_masked(detail, env)}")


class GitSource:
    """`with GitSource(repo, branch, cache_root, env).checkout() as revision:` plan from revision.checkout."""

    def __init__(self, repo: str, branch: str, cache_root: Path, env: Mapping[str, str]) -> None:
        self.repo = repo
        self.branch = branch
        self.url = remote_url(repo)
        self.env = env
        digest = hashlib.sha256(f"{self.url}\0{branch}".encode()).hexdigest()[:16]
        self.directory = Path(cache_root) / digest

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with open(self.directory.parent / f"{self.directory.name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _repo(self) -> git.Repo:
        if (self.directory / ".git").is_dir():
            return git.Repo(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        return git.Repo.init(self.directory)

    @contextlib.contextmanager
    def checkout(self) -> Iterator[Revision]:
        """Fetch the branch and check its head out; the checkout stays as it is until the block ends."""
        with self._locked():
            repo = self._repo()
            with repo:
                try:
                    with repo.git.custom_environment(**_git_env(self.url, self.env)):
                        repo.git.fetch(
                            "--no-tags",
                            "--force",
                            self.url,
                            f"+refs/heads/{self.branch}:{TRACKING_REF}",
                            kill_after_timeout=FETCH_TIMEOUT_S,
                        )
                except git.GitCommandError as exc:
                    raise _git_error(exc, self.url, self.env) from None
                commit = repo.commit(TRACKING_REF)
                if (
                    repo.head.is_valid()
                    and repo.head.commit.hexsha == commit.hexsha
                    and not repo.is_dirty(untracked_files=True)
                ):
                    pass  # already there: no checkout, so an idle pass writes nothing on disk either
                else:
                    repo.git.checkout("--force", "--detach", commit.hexsha)
                    repo.git.clean("-ffdxq")
                yield Revision(
                    commit.hexsha, commit_author(commit), first_line(commit.message), self.directory
                )


def default_cache_root(env: Mapping[str, str]) -> Path:
    """`$WP_HOME/sync` (WP_HOME defaults to ~/.wp): wp owns it; nothing else should write there."""
    return Path(env.get("WP_HOME") or os.path.expanduser("~/.wp")).expanduser() / "sync"
