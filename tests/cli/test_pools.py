"""`wp work-pool …`: default templates, listings and inspects in SPEC §4's JSON shape, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from wp_cli import Wp

POOL_FIELDS = {"name", "type", "description", "paused", "concurrency_limit", "base_job_template", "status"}


def test_default_process_template_exposes_exactly_six_variables(wp: Wp) -> None:
    result = wp("work-pool", "get-default-base-job-template", "--type", "process")
    assert result.code == 0
    template = json.loads(result.stdout)
    variables = template["variables"]["properties"]
    assert set(variables) == {"name", "env", "labels", "command", "stream_output", "working_dir"}
    assert variables["stream_output"]["default"] is True
    assert template["job_configuration"]["command"] == "{{ command }}"


def test_default_template_written_to_a_file(wp: Wp, tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    result = wp("work-pool", "get-default-base-job-template", "--type", "docker", "--file", target)
    assert result.code == 0
    assert "image" in json.loads(target.read_text())["variables"]["properties"]


def test_unknown_pool_type_is_a_clear_error(wp: Wp) -> None:
    result = wp("work-pool", "get-default-base-job-template", "--type", "mainframe")
    assert result.code == 1
    assert "mainframe" in result.stderr


def test_pool_listing_and_inspect_print_only_spec_json(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    assert wp("work-pool", "create", "held", "--paused", "--concurrency-limit", "2").code == 0
    listing = wp("work-pool", "ls", "--json").json()
    assert isinstance(listing, list)
    by_name = {p["name"]: p for p in listing}
    assert set(by_name) == {"p", "held"}
    for pool in listing:
        assert set(pool) >= POOL_FIELDS
    assert (by_name["held"]["paused"], by_name["held"]["status"]) == (True, "PAUSED")
    assert by_name["p"]["status"] == "NOT_READY"  # no worker polls it
    inspected = wp("work-pool", "inspect", "p", "--json").json()
    assert inspected["concurrency_limit"] == 4
    assert set(inspected) >= POOL_FIELDS


def test_pool_listing_marks_paused_pools(wp: Wp) -> None:
    assert wp("work-pool", "create", "held", "--paused").code == 0
    assert "paused" in wp("work-pool", "ls").stdout.lower()


def test_create_with_a_taken_name_and_inspect_of_a_missing_pool_fail_clearly(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    taken = wp("work-pool", "create", "p")
    assert taken.code == 1
    assert "'p'" in taken.stderr or " p " in taken.stderr
    missing = wp("work-pool", "inspect", "nope")
    assert missing.code == 1
    assert "work pool 'nope' does not exist" in missing.stderr


def test_create_with_an_invalid_template_file_names_the_file(wp: Wp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"job_configuration": {"image": "{{ image }}"}, "variables": {"properties": {}}}')
    result = wp("work-pool", "create", "p", "--base-job-template", bad)
    assert result.code == 1
    assert str(bad) in result.stderr
    assert "image" in result.stderr


def test_a_name_with_a_slash_is_refused_clearly(wp: Wp) -> None:
    result = wp("work-pool", "create", "team/etl")
    assert result.code == 1
    assert "work pool name 'team/etl' contains /" in result.stderr
    assert wp("work-pool", "ls", "--json").json() == []
