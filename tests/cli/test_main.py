"""The `wp` console script as a real process: exit codes and usage errors, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from wp_cli import Wp


def test_detailed_exitcode_across_the_process_boundary(wp_process: Wp, demo: Path) -> None:
    assert wp_process("plan", demo, "--detailed-exitcode").code == 2
    assert wp_process("apply", demo, "--auto-approve").code == 0
    assert wp_process("plan", demo, "--detailed-exitcode").code == 0


def test_a_plan_left_to_the_exit_still_flushes_all_output_and_its_code(
    wp_process: Wp, demo: Path, tmp_path: Path
) -> None:
    """`wp plan` leaves its plan for the process exit to free (main.main exits at once): everything written
    to a pipe and to --out must still arrive, with the right exit code, and an error keeps its code too."""
    saved = tmp_path / "plan.json"
    json_plan = wp_process("plan", demo, "--format", "json", "--out", saved, "--detailed-exitcode")
    assert json_plan.code == 2
    assert json.loads(json_plan.stdout)["resource_changes"]  # the whole document, parseable
    assert json.loads(saved.read_text()) == json.loads(json_plan.stdout)
    text_plan = wp_process("plan", demo)
    assert text_plan.code == 0 and text_plan.stdout.rstrip().endswith("to destroy.")
    (demo / "wp.yaml").write_text((demo / "wp.yaml").read_text() + "bogus_field: 1\n")
    broken = wp_process("plan", demo)
    assert broken.code == 1 and "bogus_field" in broken.stderr


def test_bad_flag_is_a_usage_error_exit_1_not_the_changes_code(wp_process: Wp) -> None:
    """A CI step with a typo (`--detailed-exitcodes`) must not look like a plan with changes (exit 2)."""
    result = wp_process("plan", "--no-such-flag")
    assert result.code == 1
    assert "No such option" in result.stderr
    assert "Usage: wp plan" in result.stderr


def test_bad_flag_value_is_a_usage_error(wp: Wp) -> None:
    result = wp("plan", "--format", "yml")
    assert result.code == 1
    assert "yml" in result.stderr


def test_missing_required_option_and_typoed_option_exit_1(wp_process: Wp) -> None:
    missing = wp_process("work-queue", "create", "q")
    assert missing.code == 1 and "--pool" in missing.stderr
    typo = wp_process("plan", "--detailed-exitcodes")
    assert typo.code == 1 and "--detailed-exitcode" in typo.stderr


def test_version(wp: Wp) -> None:
    result = wp("--version")
    assert result.code == 0
    assert result.stdout.startswith("wp ")


def test_help_names_arguments_in_capitals_and_shows_no_bool_type(wp: Wp) -> None:
    text = " ".join(wp("work-pool", "create", "--help").stdout.split())
    assert "Usage: wp work-pool create [OPTIONS] NAME" in text
    assert "<bool>" not in text and "{" not in text
    assert "<bool>" not in wp("--help").stdout
