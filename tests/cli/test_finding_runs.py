"""Finding and following runs as a user does: newest first, by name or id prefix, short ids, relative times."""

from __future__ import annotations

import re
from pathlib import Path

from wp_cli import Wp


def _runs(wp: Wp, demo: Path, n: int) -> list[dict[str, str]]:
    assert wp("apply", demo, "--auto-approve").code == 0
    made = []
    for minutes in range(n):
        result = wp("deployment", "run", "say-hello/d", "--start-in", f"{minutes + 1} minutes", "--json")
        assert result.code == 0, result.stderr
        made.append(result.json())
    return made


def test_flow_run_ls_lists_newest_first_and_limit_keeps_the_newest(wp: Wp, demo: Path) -> None:
    made = _runs(wp, demo, 3)
    newest_first = [r["id"] for r in reversed(made)]
    assert [r["id"] for r in wp("flow-run", "ls", "--json").json()] == newest_first
    assert [r["id"] for r in wp("flow-run", "ls", "--limit", "1", "--json").json()] == newest_first[:1]
    oldest = wp("flow-run", "ls", "--sort", "oldest", "--limit", "1", "--json").json()
    assert [r["id"] for r in oldest] == [made[0]["id"]]


def test_the_listing_shows_short_ids_and_relative_times(wp: Wp, demo: Path) -> None:
    made = _runs(wp, demo, 1)
    out = wp("flow-run", "ls").stdout
    assert made[0]["id"][:8] in out and made[0]["id"] not in out
    assert re.search(r"in (\d+ seconds|1 minute)\b", out), out  # a minute ahead, give or take the load


def test_inspect_logs_and_cancel_take_a_name_or_a_unique_id_prefix(wp: Wp, demo: Path) -> None:
    [run] = _runs(wp, demo, 1)
    by_name = wp("flow-run", "inspect", run["name"], "--json")
    assert by_name.code == 0, by_name.stderr and by_name.json()["id"] == run["id"]
    assert wp("flow-run", "inspect", run["id"][:6], "--json").json()["id"] == run["id"]
    assert wp("flow-run", "logs", run["id"][:8]).code == 0
    cancelled = wp("flow-run", "cancel", run["name"], "--json")
    assert cancelled.code == 0 and cancelled.json()["state"] == "CANCELLED"


def test_an_ambiguous_prefix_lists_the_candidates(wp: Wp, demo: Path) -> None:
    made = _runs(wp, demo, 2)
    result = wp("flow-run", "inspect", "")
    assert result.code == 1
    for r in made:
        assert r["name"] in result.stderr and r["id"][:8] in result.stderr
    missing = wp("flow-run", "inspect", "no-such-run")
    assert missing.code == 1 and "no flow run" in missing.stderr.lower()


def test_inspect_shows_the_runs_state_history_with_who_changed_it(wp: Wp, demo: Path) -> None:
    [run] = _runs(wp, demo, 1)
    assert wp("flow-run", "inspect", run["id"], "--json").json()["history"] == []
    assert wp("flow-run", "cancel", run["id"]).code == 0
    [change] = wp("flow-run", "inspect", run["id"], "--json").json()["history"]
    assert (change["from_state"], change["to_state"], change["message"]) == (
        "SCHEDULED",
        "CANCELLED",
        "cancelled by the user",
    )
    assert change["actor"].endswith("(wp flow-run cancel)") and change["timestamp"]
    text = " ".join(wp("flow-run", "inspect", run["name"]).stdout.split())
    assert "State history" in text and "SCHEDULED → CANCELLED" in text and "cancelled by the user" in text
