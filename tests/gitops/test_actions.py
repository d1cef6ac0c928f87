"""The runner's side: the run read from GitHub's environment and event file, and the outputs file format read
back the way the runner reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from actions_runner import parse_outputs

from reconciler.errors import WpError
from reconciler.gitops.actions import (
    SUMMARY_LIMIT_BYTES,
    actions_run,
    append_outputs,
    append_summary,
    format_outputs,
)


def test_outputs_parse_back_single_and_multi_line(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=step\n")
    values = {
        "changes": "true",
        "plan-hash": "ab" * 32,
        "failure-reason": "",
        "message": "line one\nline two=not a new output\nchanges=false",
    }
    append_outputs(path, values)
    text = path.read_text()
    assert "message<<ghadelimiter_" in text  # the multi-line value uses the delimiter form
    assert parse_outputs(text) == {"earlier": "step", **values}


def test_a_value_cannot_close_its_own_block() -> None:
    with pytest.raises(ValueError, match="delimiter"):
        format_outputs({"x": "a\nEOF\nchanges=true"}, "EOF")
    with pytest.raises(ValueError, match="invalid output name"):
        format_outputs({"a=b": "1"}, "EOF")


def _env(tmp_path: Path, event_name: str, event: dict[str, object]) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    return {
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": "octo/infra",
        "GITHUB_SHA": "1" * 40,
        "GITHUB_API_URL": "http://127.0.0.1:9/",
        "GITHUB_SERVER_URL": "http://127.0.0.1:9",
        "GITHUB_RUN_ID": "77",
        "GITHUB_TOKEN": "t",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }


def test_a_pull_request_event(tmp_path: Path) -> None:
    event = {"number": 9, "pull_request": {"number": 9, "head": {"sha": "3" * 40}}}
    run = actions_run(_env(tmp_path, "pull_request", event))
    assert run.pull_request_number == 9
    assert run.head_sha == "3" * 40  # the commit under review, not GitHub's test merge (GITHUB_SHA)
    assert run.api_url == "http://127.0.0.1:9"
    assert run.run_url == "http://127.0.0.1:9/octo/infra/actions/runs/77"
    assert run.output_file == tmp_path / "out"
    assert run.pushed_sha == "1" * 40


def test_a_push_event_names_the_pushed_commit(tmp_path: Path) -> None:
    run = actions_run(_env(tmp_path, "push", {"after": "2" * 40, "before": "1" * 40}))
    assert run.pull_request_number is None
    assert run.pushed_sha == "2" * 40
    assert run.head_sha == "1" * 40
    # A branch deletion pushes the all-zero sha: fall back to GITHUB_SHA.
    assert actions_run(_env(tmp_path, "push", {"after": "0" * 40})).pushed_sha == "1" * 40


def test_outside_github_everything_is_empty() -> None:
    run = actions_run({})
    assert (run.event_name, run.repository, run.token, run.output_file, run.summary_file) == (None,) * 5
    assert run.api_url == "https://api.github.com"
    assert run.pull_request_number is None


def test_an_unreadable_event_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WpError, match="cannot read the GitHub event file"):
        actions_run({"GITHUB_EVENT_PATH": str(tmp_path / "bad.json")})


def test_the_summary_is_cut_to_githubs_limit(tmp_path: Path) -> None:
    path = tmp_path / "summary"
    assert append_summary(path, "### small\n") is False
    big = "\n".join(["x" * 999] * 1500)  # 1.5 MB
    assert append_summary(path, big) is True
    text = path.read_text()
    assert text.startswith("### small\n")
    assert len(text.encode()) <= SUMMARY_LIMIT_BYTES + len("### small\n")
    assert "too long for the job summary" in text
