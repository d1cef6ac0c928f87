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


def repo_facts(path: str | Path) -> RepoFacts | None:
    """The facts of the git repository containing `path`, or None when it is not inside one."""
    try:
        repo = git.Repo(Path(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # an unborn branch: `git init` without a commit
            commit = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        return RepoFacts(commit, branch, repo.is_dirty(untracked_files=True))
