"""The `wp` console script as a real process: exit codes and usage errors, never a traceback."""

from __future__ import annotations

from pathlib import Path

from wp_cli import Wp


def test_detailed_exitcode_across_the_process_boundary(wp_process: Wp, demo: Path) -> None:
    assert wp_process("plan", demo, "--detailed-exitcode").code == 2
    assert wp_process("apply", demo, "--auto-approve").code == 0
    assert wp_process("plan", demo, "--detailed-exitcode").code == 0


def test_bad_flag_is_a_usage_error(wp_process: Wp) -> None:
    result = wp_process("plan", "--no-such-flag")
    assert result.code == 2
    assert "No such option" in result.stderr
    assert "Usage: wp plan" in result.stderr


def test_bad_flag_value_is_a_usage_error(wp: Wp) -> None:
    result = wp("plan", "--format", "yml")
    assert result.code == 2
    assert "yml" in result.stderr


def test_version(wp: Wp) -> None:
    result = wp("--version")
    assert result.code == 0
    assert result.stdout.startswith("wp ")
