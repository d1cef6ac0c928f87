"""`--json` for scripts: every changing command can print JSON, and errors are JSON on stderr too, with the
same exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from wp_cli import Wp


def _error(stderr: str) -> dict[str, object]:
    body = json.loads(stderr)
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    return error


def test_errors_are_json_on_stderr_with_the_same_exit_code(wp: Wp) -> None:
    missing = wp("work-pool", "inspect", "nope", "--json")
    assert missing.code == 1 and missing.stdout == ""
    error = _error(missing.stderr)
    assert error["type"] == "NotFoundError" and "nope" in str(error["message"])
    bad_state = wp("flow-run", "ls", "--state", "bogus", "--json")
    assert bad_state.code == 1
    assert "unknown state BOGUS" in str(_error(bad_state.stderr)["message"])
    usage = wp("work-pool", "ls", "--json", "--bogus")
    assert usage.code == 1
    assert _error(usage.stderr)["type"] == "UsageError"


def test_pause_and_limits_print_the_object_as_json(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    pool = wp("work-pool", "pause", "p", "--json")
    assert pool.code == 0 and pool.json()["paused"] is True and pool.json()["name"] == "p"
    limited = wp("work-pool", "set-concurrency-limit", "p", "3", "--json").json()
    assert limited["concurrency_limit"] == 3
    assert wp("work-pool", "resume", "p", "--json").json()["paused"] is False
    assert wp("work-pool", "clear-concurrency-limit", "p", "--json").json()["concurrency_limit"] is None
    queue = wp("work-queue", "pause", "urgent", "--pool", "p", "--json").json()
    assert (queue["name"], queue["paused"]) == ("urgent", True)
    assert wp("work-queue", "resume", "urgent", "--pool", "p", "--json").json()["paused"] is False
    q_limit = wp("work-queue", "set-concurrency-limit", "urgent", "2", "--pool", "p", "--json").json()
    assert q_limit["concurrency_limit"] == 2
    assert (
        wp("work-queue", "clear-concurrency-limit", "urgent", "--pool", "p", "--json").json()[
            "concurrency_limit"
        ]
        is None
    )
    dep = wp("deployment", "pause", "say-hello/d", "--json").json()
    assert (dep["name"], dep["paused"]) == ("d", True)
    assert wp("deployment", "resume", "say-hello/d", "--json").json()["paused"] is False


def test_destroy_prints_json_and_says_destroy_complete(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    text = wp("destroy", demo, "--auto-approve")
    assert text.code == 0 and "Destroy complete!" in text.stdout and "Apply complete!" not in text.stdout
    assert wp("apply", demo, "--auto-approve").code == 0
    as_json = wp("destroy", demo, "--auto-approve", "--json")
    assert as_json.code == 0, as_json.stderr
    body = as_json.json()
    assert body["summary"]["destroy"] >= 3


def test_import_prints_json(wp: Wp) -> None:
    assert wp("work-pool", "create", "hand", "--description", "made by hand").code == 0
    result = wp("import", "work_pool.hand", "--json")
    assert result.code == 0, result.stderr
    [pool] = result.json()["work_pools"]
    assert (pool["name"], pool["description"]) == ("hand", "made by hand")
