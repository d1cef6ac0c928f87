"""Every project in examples/ plans from an empty store, applies, and then plans "No changes" — on SQLite and
on PostgreSQL, through the `wp` command as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from wp_cli import WpResult, run_wp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _store_env(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str | None]:
    if backend == "postgres":
        return {"WP_DATABASE_URL": str(request.getfixturevalue("postgres_url")), "WP_HOME": str(tmp_path)}
    return {"WP_HOME": str(tmp_path)}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if (p / "wp.yaml").is_file()))
def test_example_plans_applies_and_converges(
    example: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = _store_env(backend, request, tmp_path)
    directory = EXAMPLES / example

    def wp(*args: str | Path) -> WpResult:
        return run_wp(*args, env=env)

    assert wp("validate", directory).code == 0
    first = wp("plan", directory, "--detailed-exitcode", "--format", "json")
    assert first.code == 2, first.stderr
    plan = first.json()
    assert plan["summary"]["add"] > 0
    assert {tuple(c["actions"]) for c in plan["resource_changes"]} == {("create",)}

    applied = wp("apply", directory, "--auto-approve")
    assert applied.code == 0, applied.stderr
    assert f"{plan['summary']['add']} added, 0 changed, 0 destroyed" in applied.stdout

    again = wp("plan", directory, "--detailed-exitcode")
    assert again.code == 0, again.stdout
    assert "No changes" in again.stdout
    pools = {p["name"] for p in wp("work-pool", "ls", "--json").json()}
    declared = {c["name"] for c in plan["resource_changes"] if c["address"].startswith("work_pool.")}
    assert pools == declared
