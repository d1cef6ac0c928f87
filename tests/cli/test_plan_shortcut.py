"""The no-op shortcut of `wp plan` / `wp apply` / `wp drift`: after an apply (or a plan with no changes), a
plan of unchanged files against an unchanged store prints "No changes" without loading the project, exactly as
the full path prints it. Everything that could make the plan differ takes the full path again: an edited,
added or deleted file, an environment variable the config reads, an imperative write by the CLI, the API or
the UI, another store, `--refresh`. Running work (runs, heartbeats, claims) does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from wp_cli import ProjectWriter, Wp

import reconciler.pipeline
from reconciler.api import create_app
from reconciler.model import FlowRun
from reconciler.store.sql import SqlStore

PROJECT = """\
project: demo
include: ["more/*.yaml"]
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
    queues:
      - {name: urgent, priority: 1}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p, work_queue_name: urgent, job_variables: {env: {MODE: "${SHORTCUT_MODE:-fast}"}}}
"""
MORE = """\
deployments:
  - name: extra
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p}
"""
NO_CHANGES = "No changes. Your work pools match the configuration."


@pytest.fixture
def full_plans(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The directories planned in full (loaded and diffed) by the in-process `wp` calls of a test."""
    planned: list[Path] = []
    real = reconciler.pipeline.plan_project

    def spy(directory: Path, *args: object, **kwargs: object) -> reconciler.pipeline.PlanOutcome:
        planned.append(Path(directory))
        return real(directory, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconciler.pipeline, "plan_project", spy)
    return planned


@pytest.fixture
def applied(wp: Wp, project: ProjectWriter, full_plans: list[Path]) -> Path:
    """The project, with more/extra.yaml included, applied; the spy reset."""
    directory = project("demo", PROJECT)
    (directory / "more").mkdir()
    (directory / "more" / "extra.yaml").write_text(MORE)
    assert wp("apply", directory, "--auto-approve").code == 0
    full_plans.clear()
    return directory


def shortcut_taken(wp: Wp, directory: Path, full_plans: list[Path], *args: str) -> str:
    """`wp plan` answered by the shortcut; its output, which must be the full path's, byte for byte."""
    quick = wp("plan", directory, *args)
    assert full_plans == [], "the plan loaded the project"
    full = wp("plan", directory, "--refresh", *args)
    assert full_plans == [directory]
    full_plans.clear()
    assert (quick.code, quick.stdout, quick.stderr) == (full.code, full.stdout, full.stderr)
    return quick.stdout


def full_plan(
    wp: Wp, directory: Path, full_plans: list[Path], *args: str, env: dict[str, str | None] | None = None
) -> str:
    result = wp("plan", directory, *args, env=env)
    assert full_plans == [directory], "the shortcut answered a plan that had to be made in full"
    full_plans.clear()
    return result.stdout


def test_after_an_apply_an_unchanged_project_is_a_noop_without_loading_it(
    wp: Wp, applied: Path, full_plans: list[Path]
) -> None:
    assert shortcut_taken(wp, applied, full_plans).strip() == NO_CHANGES
    shortcut_taken(wp, applied, full_plans, "--detailed-exitcode")
    shortcut_taken(wp, applied, full_plans, "--format", "markdown")
    shortcut_taken(wp, applied, full_plans, "--compact")
    # apply and drift too, in text and JSON
    for command in (["apply", "--auto-approve"], ["apply", "--json"], ["drift"], ["drift", "--json"]):
        quick = wp(command[0], applied, *command[1:])
        assert full_plans == [], command
        full = wp(command[0], applied, *command[1:], "--refresh")
        assert full_plans == [applied]
        full_plans.clear()
        assert (quick.code, quick.stdout) == (full.code, full.stdout), command
    # The JSON plan and a plan file list every object: always the full path, same as before.
    assert '"resource_changes"' in full_plan(wp, applied, full_plans, "--format", "json")


def test_an_edited_file_an_added_include_and_a_deleted_include_are_planned_in_full(
    wp: Wp, applied: Path, full_plans: list[Path]
) -> None:
    text = (applied / "wp.yaml").read_text()
    (applied / "wp.yaml").write_text(text.replace("concurrency_limit: 4", "concurrency_limit: 5"))
    assert "concurrency_limit" in full_plan(wp, applied, full_plans)
    (applied / "wp.yaml").write_text(text)
    shortcut_taken(wp, applied, full_plans)  # back as it was: the same no-op again

    (applied / "more" / "new.yaml").write_text(MORE.replace("extra", "added"))
    assert "deployment.say-hello/added will be created" in full_plan(wp, applied, full_plans)
    (applied / "more" / "new.yaml").unlink()
    shortcut_taken(wp, applied, full_plans)

    (applied / "more" / "extra.yaml").unlink()
    assert "extra" in full_plan(wp, applied, full_plans)  # undeclared now (kept: prune is off)


def test_an_edited_flow_file_is_planned_in_full(wp: Wp, applied: Path, full_plans: list[Path]) -> None:
    flow = applied / "flows" / "hello.py"
    flow.write_text(flow.read_text().replace("def say_hello(", "def say_goodbye("))
    result = wp("plan", applied)
    assert full_plans == [applied] and result.code == 1
    assert "defines no function 'say_hello'" in result.stderr


def test_the_environment_variables_the_config_reads_count_and_no_others(
    wp: Wp, applied: Path, full_plans: list[Path]
) -> None:
    shortcut_taken(wp, applied, full_plans)
    assert '"slow"' in full_plan(wp, applied, full_plans, env={"SHORTCUT_MODE": "slow"})
    # Set to its default value: the same plan, but wp cannot know that without loading. That plan records
    # the no-op with the variable set; then an unrelated variable changes nothing, unsetting it does.
    assert full_plan(wp, applied, full_plans, env={"SHORTCUT_MODE": "fast"}).strip() == NO_CHANGES
    quick = wp("plan", applied, env={"SHORTCUT_MODE": "fast", "SOMETHING_ELSE": "x"})
    assert full_plans == [] and quick.stdout.strip() == NO_CHANGES
    assert full_plan(wp, applied, full_plans).strip() == NO_CHANGES


def test_imperative_cli_writes_show_as_drift_on_the_next_plan(
    wp: Wp, applied: Path, full_plans: list[Path]
) -> None:
    assert wp("work-pool", "set-concurrency-limit", "p", "9").code == 0
    out = full_plan(wp, applied, full_plans)
    assert "changed outside wp" in out and "concurrency_limit" in out
    # Put back. An apply whose plan showed drift is not recorded (an object that drifted to what the config
    # says has no change to rewrite what was applied): the next plan is made in full, and records the no-op.
    assert wp("apply", applied, "--auto-approve").code == 0
    full_plans.clear()
    assert full_plan(wp, applied, full_plans).strip() == NO_CHANGES
    shortcut_taken(wp, applied, full_plans)
    # a hand-made object elsewhere moves the store too: one full plan, which then records the no-op
    assert wp("work-pool", "create", "elsewhere", "--type", "process").code == 0
    assert full_plan(wp, applied, full_plans).strip() == NO_CHANGES
    shortcut_taken(wp, applied, full_plans)


@pytest.fixture
def server(live_store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(live_store, api_key=None), base_url="http://127.0.0.1") as client:
        yield client


def test_api_and_ui_writes_show_as_drift_on_the_next_plan(
    wp: Wp, applied: Path, full_plans: list[Path], server: TestClient
) -> None:
    assert server.patch("/work_pools/p", json={"description": "by the API"}).status_code == 200
    assert "by the API" in full_plan(wp, applied, full_plans)
    assert wp("apply", applied, "--auto-approve").code == 0
    full_plans.clear()
    assert full_plan(wp, applied, full_plans).strip() == NO_CHANGES
    shortcut_taken(wp, applied, full_plans)

    page = server.get("/ui/pools")
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    paused = server.post("/ui/actions/pools/p/pause", data={"csrf": token}, headers={"X-WP-Fetch": "1"})
    assert paused.status_code < 400, paused.text
    out = full_plan(wp, applied, full_plans)
    assert "changed outside wp" in out and "paused" in out


def test_running_work_keeps_the_shortcut(
    wp: Wp, applied: Path, full_plans: list[Path], live_store: SqlStore
) -> None:
    now = datetime.now(UTC)
    live_store.create_flow_run(
        FlowRun(
            id="00000000-0000-0000-0000-0000000000aa",
            name="run-a",
            flow="say-hello",
            deployment="say-hello/d",
            work_pool="p",
            work_queue="urgent",
            state="SCHEDULED",
            expected_start_time=now - timedelta(seconds=1),
        )
    )
    live_store.heartbeat_worker("p", "w", interval=30, now=now)
    assert live_store.claim_runs("p", "w", limit=1, scheduled_before=now, now=now)
    live_store.set_run_state("00000000-0000-0000-0000-0000000000aa", "RUNNING", now=now)
    assert shortcut_taken(wp, applied, full_plans).strip() == NO_CHANGES


def test_another_store_or_refresh_plans_in_full(
    wp: Wp, applied: Path, full_plans: list[Path], tmp_path: Path
) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert "will be created" in full_plan(wp, applied, full_plans, env={"WP_DATABASE_URL": other})
    assert full_plan(wp, applied, full_plans, "--refresh").strip() == NO_CHANGES


def test_a_plan_with_warnings_is_never_answered_by_the_shortcut(
    wp: Wp, applied: Path, full_plans: list[Path]
) -> None:
    (applied / "more" / "extra.yaml").unlink()  # extra is undeclared, kept with a warning (prune is off)
    first = full_plan(wp, applied, full_plans)
    assert "kept because prune is off" in first
    assert full_plan(wp, applied, full_plans) == first


def test_a_plan_through_a_wp_server_takes_the_shortcut_too(
    wp: Wp, project: ProjectWriter, tmp_path: Path, full_plans: list[Path]
) -> None:
    """Against a real `wp server` process (WP_API_URL): apply, the no-op plan, then an API write."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    directory = project("served", PROJECT)
    (directory / "more").mkdir()
    (directory / "more" / "extra.yaml").write_text(MORE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wp_bin = Path(sys.executable).parent / "wp"
    server = subprocess.Popen(
        [str(wp_bin), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", "WP_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        env: dict[str, str | None] = {"WP_API_URL": url}
        assert wp("apply", directory, "--auto-approve", env=env).code == 0
        full_plans.clear()
        quick = wp("plan", directory, "--detailed-exitcode", env=env)
        assert full_plans == [], "the plan loaded the project"
        assert (quick.code, quick.stdout) == (0, NO_CHANGES + "\n")
        assert httpx.patch(url + "/work_pools/p", json={"concurrency_limit": 7}).status_code == 200
        drifted = wp("plan", directory, "--detailed-exitcode", env=env)
        assert full_plans == [directory]
        assert drifted.code == 2 and "changed outside wp" in drifted.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
