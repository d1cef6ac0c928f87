"""The GitHub Actions runner's side of a job: what the run is (from its environment and event file) and the two
files a step reports through (step outputs and the job summary).

Owns reading `GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`, `GITHUB_REPOSITORY`, `GITHUB_SHA`, `GITHUB_API_URL`,
`GITHUB_TOKEN`, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` from a passed-in mapping, and the outputs file format
(`name=value`, or the `name<<DELIMITER` form for multi-line values). Must never read os.environ itself or talk
to the GitHub API (`gitops.github` does).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import WpError
from reconciler.gitops.pr_comment import fit_markdown

DEFAULT_API_URL = "https://api.github.com"
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})
# GitHub drops a step's job summary larger than 1 MiB.
SUMMARY_LIMIT_BYTES = 1_000_000


@dataclass(frozen=True)
class ActionsRun:
    """One workflow run as a step sees it; every field is None/empty outside GitHub Actions."""

    event_name: str | None = None
    event: Mapping[str, Any] = field(default_factory=dict)
    repository: str | None = None  # owner/name
    sha: str | None = None
    api_url: str = DEFAULT_API_URL
    token: str | None = None
    output_file: Path | None = None
    summary_file: Path | None = None
    run_url: str | None = None

    @property
    def pull_request_number(self) -> int | None:
        """The pull request a `pull_request` event is about."""
        if self.event_name not in PULL_REQUEST_EVENTS:
            return None
        pr = self.event.get("pull_request")
        number = pr.get("number") if isinstance(pr, Mapping) else self.event.get("number")
        return number if isinstance(number, int) and not isinstance(number, bool) else None

    @property
    def head_sha(self) -> str | None:
        """The commit under review: a pull request's head (GITHUB_SHA is GitHub's test merge), else GITHUB_SHA."""
        pr = self.event.get("pull_request") if self.event_name in PULL_REQUEST_EVENTS else None
        head = pr.get("head") if isinstance(pr, Mapping) else None
        sha = head.get("sha") if isinstance(head, Mapping) else None
        return sha if isinstance(sha, str) and sha else self.sha

    @property
    def pushed_sha(self) -> str | None:
        """The commit a `push` event moved the branch to (the merge commit after a merge), else GITHUB_SHA."""
        after = self.event.get("after") if self.event_name == "push" else None
        return after if isinstance(after, str) and after.strip("0") else self.sha


def actions_run(env: Mapping[str, str]) -> ActionsRun:
    """The run described by `env` (the step's environment); reads the event file it names."""
    event: Mapping[str, Any] = {}
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            loaded = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WpError(f"cannot read the GitHub event file {event_path}: {exc}") from exc
        event = loaded if isinstance(loaded, dict) else {}
    server, run_id, repository = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_RUN_ID"),
        env.get("GITHUB_REPOSITORY"),
    )
    return ActionsRun(
        event_name=env.get("GITHUB_EVENT_NAME") or None,
        event=event,
        repository=repository or None,
        sha=env.get("GITHUB_SHA") or None,
        api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
        token=env.get("GITHUB_TOKEN") or None,
        output_file=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
        summary_file=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
        run_url=f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
        if server and run_id and repository
        else None,
    )


def format_outputs(outputs: Mapping[str, str], delimiter: str) -> str:
    """The lines a step appends to GITHUB_OUTPUT. A value with a line break uses the heredoc form, closed by
    `delimiter` (which must occur in no value, else a value could end early and set other outputs)."""
    lines: list[str] = []
    for name, value in outputs.items():
        if not name or any(c in name for c in "=<\r\n"):
            raise ValueError(f"invalid output name {name!r}")
        if "\n" not in value and "\r" not in value:
            lines.append(f"{name}={value}")
            continue
        if delimiter in value:
            raise ValueError(f"the value of output {name!r} contains the delimiter")
        lines += [f"{name}<<{delimiter}", value, delimiter]
    return "".join(line + "\n" for line in lines)


def append_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    # A fresh random delimiter per write, as the runner's own toolkit does: no value can guess it.
    text = format_outputs(outputs, f"ghadelimiter_{uuid.uuid4()}")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def append_summary(path: Path, markdown: str) -> bool:
    """Append `markdown` to the job summary, cut to GitHub's limit; whether it had to be cut."""
    text, cut = fit_markdown(
        markdown,
        SUMMARY_LIMIT_BYTES,
        note="The plan is too long for the job summary and is cut here; `wp plan` prints all of it.",
        size=lambda s: len(s.encode("utf-8")),
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return cut
