"""Queue priority arithmetic (SPEC §1 "Queue priorities")."""

from __future__ import annotations

from reconciler.store.priorities import next_free_priority, settle_priorities


def test_next_free_is_after_the_highest_not_in_a_gap() -> None:
    assert next_free_priority([]) == 1
    assert next_free_priority([1, 5]) == 6


def test_taking_a_priority_shifts_the_others_down_until_a_gap() -> None:
    assert settle_priorities({"a": 1, "b": 2, "c": 3}, {"c": 1}) == {"c": 1, "a": 2, "b": 3}
    assert settle_priorities({"a": 1, "b": 2, "c": 5}, {"n": 1}) == {"n": 1, "a": 2, "b": 3}


def test_gaps_are_kept_and_untouched_queues_are_not_reported() -> None:
    assert settle_priorities({"a": 1, "b": 3}, {"a": 2}) == {"a": 2}
    assert settle_priorities({"a": 1, "b": 3}, {"a": 1}) == {}
