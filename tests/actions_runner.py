"""What the GitHub Actions runner does around a step, for tests: the step's environment (event file, outputs
and summary files, the API URL of a fake GitHub) and reading the outputs file back the way the runner does."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_github import FakeGitHub

# Every variable `wp ci` reads from the runner: a test sets each one or removes it, never inherits it.
RUNNER_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_API_URL",
    "GITHUB_SERVER_URL",
    "GITHUB_RUN_ID",
    "GITHUB_TOKEN",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
)
_steps = itertools.count(1)


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` … `DELIMITER` blocks."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    assert lines[-1] == "", "the file must end with a newline"
    i = 0
    while i < len(lines) - 1:
        line = lines[i]
        eq, heredoc = line.find("="), line.find("<<")
        if heredoc != -1 and (eq == -1 or heredoc < eq):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            assert eq > 0, f"not an output line: {line!r}"
            out[line[:eq]] = line[eq + 1 :]
            i += 1
    return out


@dataclass(frozen=True)
class Step:
    """One step of a workflow run: its environment, and the files it reports through."""

    env: dict[str, str | None]
    output: Path
    summary: Path

    def outputs(self) -> dict[str, str]:
        return parse_outputs(self.output.read_text())

    def summary_text(self) -> str:
        return self.summary.read_text() if self.summary.exists() else ""


def github_step(tmp_path: Path, github: FakeGitHub, event_name: str, event: dict[str, Any], sha: str) -> Step:
    """The environment GitHub gives a step of a run triggered by `event_name` with payload `event`."""
    directory = tmp_path / f"runner-{next(_steps)}"
    directory.mkdir()
    (directory / "event.json").write_text(json.dumps(event))
    output, summary = directory / "output", directory / "summary"
    output.touch()
    summary.touch()
    env: dict[str, str | None] = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(directory / "event.json"),
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_SHA": sha,
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": github.url,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_TOKEN": github.token,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    return Step(env, output, summary)


def outside_github() -> dict[str, str | None]:
    """A plain shell: none of the runner's variables."""
    return dict.fromkeys(RUNNER_VARIABLES)


def pull_request_event(number: int, head_sha: str) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {"number": number, "head": {"sha": head_sha}},
    }


def push_event(after: str, before: str = "0" * 40) -> dict[str, Any]:
    return {"ref": "refs/heads/main", "before": before, "after": after}
