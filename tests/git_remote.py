"""A real git "remote" for the sync tests: a bare repository and a working clone that commits and pushes to it,
and a writer of small wp.yaml projects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

FLOW = "def say_hello(name: str = 'world') -> str:\n    return name\n"


def project_yaml(pools: dict[str, int], deployments: tuple[str, ...] = ("d",), extra: str = "") -> str:
    """A wp.yaml: process pools with these concurrency limits, deployments of say_hello in the first pool."""
    lines = ["project: demo", "work_pools:"]
    for name, limit in pools.items():
        lines += [f"  - name: {name}", "    type: process", f"    concurrency_limit: {limit}"]
        lines += ["    ignore_changes: [paused]"]
    first = next(iter(pools))
    lines.append("deployments:" if deployments else "deployments: []")
    for d in deployments:
        lines += [
            f"  - name: {d}",
            "    entrypoint: flows/hello.py:say_hello",
            f"    work_pool: {{name: {first}}}",
        ]
    return "\n".join(lines) + "\n" + extra


@dataclass
class Remote:
    """A bare repository (`url`) and a clone that commits to its `main` branch."""

    bare: Path
    clone: git.Repo

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, files: dict[str, str | None], message: str, branch: str = "main") -> str:
        root = Path(self.clone.working_dir)
        for name, text in files.items():
            path = root / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.clone.git.add("-A")
        self.clone.index.commit(message)
        self.clone.git.push("origin", f"HEAD:refs/heads/{branch}")
        return self.clone.head.commit.hexsha


def make_remote(root: Path) -> Remote:
    bare = root / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main").close()
    clone = git.Repo.clone_from(str(bare), root / "work")
    with clone.config_writer() as config:
        config.set_value("user", "name", "Ada Lovelace")
        config.set_value("user", "email", "ada@example.org")
    return Remote(bare, clone)
