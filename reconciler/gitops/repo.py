"""Git facts about the repository a config lives in: commit, branch, dirty flag (recorded with each apply).

Owns `repo_facts()`. Must never change a repository (no fetch, checkout or commit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import git


@dataclass(frozen=True)
class RepoFacts:
    commit: str | None  # None in a repository without commits
    branch: str | None  # None on a detached HEAD
    dirty: bool  # uncommitted changes to tracked files, or untracked files
    author: str | None = None  # "Name <email>" of the commit
    message: str | None = None  # the first line of its message


def _may_be_in_repository(path: Path) -> bool:
    """False when no directory from `path` up holds what GitPython's search looks for: a `.git` entry, or the
    `HEAD` of a bare repository. A project outside git then never imports GitPython (a tenth of an apply's
    start-up); anything that might be a repository is left to GitPython to decide."""
    # the start GitPython walks up from (git.repo.fun.expand_path: ~ and $VARS expanded, normalized)
    start = Path(os.path.normpath(os.path.abspath(os.path.expandvars(os.path.expanduser(path)))))
    return any(os.path.lexists(d / ".git") or os.path.lexists(d / "HEAD") for d in (start, *start.parents))


def repo_facts(path: str | Path) -> RepoFacts | None:
    """The facts of the git repository containing `path`, or None when it is not inside one."""
    if not _may_be_in_repository(Path(path)):
        return None
    import git

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
