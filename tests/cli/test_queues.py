"""`wp work-queue …`: priority shifting, the undeletable default queue, SPEC §4 JSON."""

from __future__ import annotations

from wp_cli import Wp

QUEUE_FIELDS = {"name", "work_pool", "priority", "concurrency_limit", "paused", "status"}


def _priorities(wp: Wp, pool: str) -> list[tuple[str, int]]:
    return [(q["name"], q["priority"]) for q in wp("work-queue", "ls", "--pool", pool, "--json").json()]


def test_create_without_priority_takes_the_first_free_after_the_highest(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    created = wp("work-queue", "create", "batch", "--pool", "p")
    assert created.code == 0
    assert "priority 2" in created.stdout
    assert _priorities(wp, "p") == [("default", 1), ("batch", 2)]


def test_create_with_a_taken_priority_shifts_the_others_down(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    assert wp("work-queue", "create", "a", "--pool", "p", "--priority", "2").code == 0
    assert wp("work-queue", "create", "c", "--pool", "p", "--priority", "5").code == 0
    assert wp("work-queue", "create", "urgent", "--pool", "p", "--priority", "1").code == 0
    assert _priorities(wp, "p") == [("urgent", 1), ("default", 2), ("a", 3), ("c", 5)]


def test_the_default_queue_cannot_be_deleted(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    result = wp("work-queue", "delete", "default", "--pool", "p")
    assert result.code == 1
    assert "default queue cannot be deleted" in result.stderr
    assert [name for name, _ in _priorities(wp, "p")] == ["default"]


def test_queue_listing_and_inspect_print_only_spec_json(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    assert wp("work-queue", "create", "q", "--pool", "p", "--limit", "3").code == 0
    assert wp("work-queue", "pause", "q", "--pool", "p").code == 0
    listing = wp("work-queue", "ls", "--pool", "p", "--json").json()
    assert all(set(q) >= QUEUE_FIELDS for q in listing)
    inspected = wp("work-queue", "inspect", "q", "--pool", "p", "--json").json()
    assert set(inspected) >= QUEUE_FIELDS
    assert (inspected["work_pool"], inspected["concurrency_limit"], inspected["status"]) == ("p", 3, "PAUSED")


def test_queue_of_a_missing_pool_is_a_clear_error(wp: Wp) -> None:
    result = wp("work-queue", "create", "q", "--pool", "nowhere")
    assert result.code == 1
    assert "nowhere" in result.stderr
