"""repo_facts on real git repositories in temp dirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git

from reconciler.gitops.repo import RepoFacts, repo_facts

AUTHOR = "t <t@example.com>"


def _repo(path: Path) -> git.Repo:
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.com")
    return repo


def test_outside_a_repository_gives_none(tmp_path: Path) -> None:
    assert repo_facts(tmp_path) is None
    assert repo_facts(tmp_path / "missing") is None


def test_clean_repository_from_a_subdirectory(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "wp.yaml").write_text("project: x\n")
    repo.index.add(["project/wp.yaml"])
    commit = repo.index.commit("first")
    assert repo_facts(tmp_path / "project") == RepoFacts(commit.hexsha, "main", False, AUTHOR, "first")


def test_dirty_untracked_and_detached(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (tmp_path / "wp.yaml").write_text("project: x\n")
    repo.index.add(["wp.yaml"])
    commit = repo.index.commit("first")
    (tmp_path / "new.yaml").write_text("x: 1\n")
    assert repo_facts(tmp_path) == RepoFacts(commit.hexsha, "main", True, AUTHOR, "first")
    (tmp_path / "new.yaml").unlink()
    (tmp_path / "wp.yaml").write_text("project: y\n")
    assert repo_facts(tmp_path) == RepoFacts(commit.hexsha, "main", True, AUTHOR, "first")
    repo.git.checkout("--", "wp.yaml")
    repo.git.checkout(commit.hexsha)
    assert repo_facts(tmp_path) == RepoFacts(commit.hexsha, None, False, AUTHOR, "first")


def test_the_author_and_the_first_line_of_the_message(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (tmp_path / "wp.yaml").write_text("project: x\n")
    repo.index.add(["wp.yaml"])
    repo.index.commit("Raise the limit\n\nBecause the nightly jobs queue up.\n")
    facts = repo_facts(tmp_path)
    assert facts is not None and facts.author == AUTHOR and facts.message == "Raise the limit"


def test_repository_without_commits(tmp_path: Path) -> None:
    _repo(tmp_path)
    assert repo_facts(tmp_path) == RepoFacts(None, "main", False)


def test_outside_a_repository_git_is_not_even_imported(tmp_path: Path) -> None:
    """A project outside git (the usual case for a quick apply) is answered without loading GitPython."""
    code = (
        "import sys\n"
        "from reconciler.gitops.repo import repo_facts\n"
        f"assert repo_facts({str(tmp_path)!r}) is None\n"
        "print('git' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_bare_repository_and_a_worktree_file_are_still_found(tmp_path: Path) -> None:
    """What only looks like a repository from outside (a bare one's HEAD, a `.git` file) goes to GitPython."""
    origin = _repo(tmp_path / "origin")
    (tmp_path / "origin" / "f").write_text("x")
    origin.index.add(["f"])
    commit = origin.index.commit("first")
    bare = git.Repo.clone_from(str(tmp_path / "origin"), str(tmp_path / "bare.git"), bare=True)
    facts = repo_facts(tmp_path / "bare.git")
    assert facts is not None and facts.commit == commit.hexsha
    bare.close()
    origin.git.worktree("add", str(tmp_path / "wt"), "-b", "other")
    assert (tmp_path / "wt" / ".git").is_file()
    facts = repo_facts(tmp_path / "wt")
    assert facts is not None and facts.commit == commit.hexsha and facts.branch == "other"
