"""Impact notes under plan changes: schedule runs, rendered jobs, invalid jobs, runs in flight."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.impact import runs_in_flight_note, schedule_notes, template_notes
from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import BaseJobTemplate, Deployment, Schedule

NOW = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
HOURLY = Schedule(slug="s", cron="0 * * * *")
DAILY_2AM = Schedule(slug="s", cron="0 2 * * *")


def test_changing_hourly_to_daily_removes_23_runs_in_the_next_24h() -> None:
    [note] = schedule_notes(HOURLY, DAILY_2AM, NOW)
    assert note.kind == "schedule_runs"
    assert (note.data["removed"], note.data["added"]) == (23, 0)
    assert note.data["first_removed"][:2] == ["2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+00:00"]
    assert "removes 23 runs" in note.message and "24 h" in note.message


def test_a_new_schedule_adds_and_a_deleted_one_removes_runs() -> None:
    [added] = schedule_notes(None, DAILY_2AM, NOW)
    assert (added.data["removed"], added.data["added"]) == (0, 1)
    assert "adds 1 run " in added.message and "2024-01-01 02:00 UTC" in added.message
    [removed] = schedule_notes(HOURLY, None, NOW, hours=3)
    assert removed.data["removed"] == 3


def test_shifting_a_schedule_counts_both_sides() -> None:
    [note] = schedule_notes(DAILY_2AM, Schedule(slug="s", cron="0 3 * * *"), NOW)
    assert (note.data["removed"], note.data["added"]) == (1, 1)
    assert "removes 1 run" in note.message and "adds 1 run" in note.message


def test_unchanged_or_run_neutral_changes_give_no_note() -> None:
    assert schedule_notes(HOURLY, HOURLY, NOW) == []
    same_times = Schedule(slug="s", cron="0 * * * *", parameters={"x": 1})
    assert schedule_notes(HOURLY, same_times, NOW) == []


def test_an_inactive_schedule_produces_no_runs() -> None:
    paused = Schedule(slug="s", cron="0 * * * *", active=False)
    [note] = schedule_notes(HOURLY, paused, NOW)
    assert (note.data["removed"], note.data["added"]) == (24, 0)
    assert schedule_notes(paused, Schedule(slug="s", cron="0 2 * * *", active=False), NOW) == []


def deployment(name: str, pool: str = "k8s", **job_variables: object) -> Deployment:
    return Deployment(
        flow="etl", name=name, entrypoint="f.py:etl", work_pool=pool, job_variables=job_variables
    )


def test_a_template_change_lists_the_deployments_whose_rendered_job_changes() -> None:
    before = default_base_job_template("kubernetes")
    props = dict(before.variables["properties"])
    props["namespace"] = {**props["namespace"], "default": "prod"}
    after = BaseJobTemplate(
        job_configuration=before.job_configuration, variables={**before.variables, "properties": props}
    )
    deps = [deployment("a"), deployment("b", namespace="team"), deployment("c", pool="other")]
    [note] = template_notes("k8s", before, after, deps)
    assert note.kind == "rendered_job"
    assert list(note.data["deployments"]) == ["etl/a"]  # b pins its namespace; c is in another pool
    assert "namespace" in note.data["deployments"]["etl/a"]
    assert "etl/a" in note.message and "1 deployment" in note.message


def test_a_template_change_that_drops_a_variable_makes_deployments_using_it_invalid() -> None:
    before = default_base_job_template("kubernetes")
    props = {k: v for k, v in before.variables["properties"].items() if k != "cpu_request"}
    after = default_base_job_template("kubernetes").model_copy(
        update={"variables": {"type": "object", "properties": props}}
    )
    notes = template_notes("k8s", before, after, [deployment("uses", cpu_request="2"), deployment("plain")])
    invalid = [n for n in notes if n.kind == "invalid_job"]
    assert [n.data["deployment"] for n in invalid] == ["etl/uses"]
    assert "etl/uses" in invalid[0].message and "'cpu_request'" in invalid[0].message


def test_an_identical_template_gives_no_notes() -> None:
    t = default_base_job_template("process")
    assert template_notes("k8s", t, default_base_job_template("process"), [deployment("a", pool="k8s")]) == []


def test_runs_in_flight_counts_live_runs_only() -> None:
    note = runs_in_flight_note("work_pool.k8s", {"RUNNING": 2, "SCHEDULED": 1, "COMPLETED": 40, "LATE": 0})
    assert note is not None and note.kind == "runs_in_flight"
    assert note.data["total"] == 3 and note.data["by_state"] == {"RUNNING": 2, "SCHEDULED": 1}
    assert "work_pool.k8s has 3 runs in flight (2 RUNNING, 1 SCHEDULED)" in note.message
    assert runs_in_flight_note("work_queue.k8s/low", {"COMPLETED": 5, "FAILED": 1}) is None
    assert runs_in_flight_note("work_queue.k8s/low", {}) is None
