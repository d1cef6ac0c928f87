"""Git facts about the repository a config lives in: commit, branch, dirty flag (recorded with each apply).

Owns `repo_facts()`. Must never change a repository (no fetch, checkout or commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git


@dataclass(frozen=True)
class RepoFacts:
    commit: str | None  # None in a repository without commits
    branch: str | None  # None on a detached HEAD
    dirty: bool  # uncommitted changes to tracked files, or untracked files
    author: str | None = None  # "Name <email>" of the commit
    message: str | None = None  # the first line of its message


def repo_facts(path: str | Path) -> RepoFacts | None:
    """The facts of the git repository containing `path`, or None when it is not inside one."""
    try:
        repo = git.Repo(Path(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        try:
            head = repo.head.commit
        except ValueError:  # an unborn branch: `git init` without a commit
            head = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        dirty = repo.is_dirty(untracked_files=True)
        if head is None:
            return RepoFacts(None, branch, dirty)
        return RepoFacts(head.hexsha, branch, dirty, commit_author(head), first_line(head.message))


def commit_author(commit: git.Commit) -> str:
    return f"{commit.author.name} <{commit.author.email}>"


def first_line(message: str | bytes) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return text.strip().splitlines()[0] if text.strip() else ""
