"""Queue priority arithmetic within one pool (SPEC §1 "Queue priorities", prefect-semantics §1.2).

Owns the pure rules: the first free priority after the highest, and shifting queues down until a gap when a
priority is taken. Must never touch the database: callers pass {queue name: priority} and write the result.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


def next_free_priority(priorities: Collection[int]) -> int:
    """The first free priority after the highest (1 for an empty pool)."""
    return max(priorities, default=0) + 1


def settle_priorities(current: Mapping[str, int], fixed: Mapping[str, int]) -> dict[str, int]:
    """Make priorities unique: queues in `fixed` take exactly those priorities; every other queue keeps its
    order and moves down only as far as needed, so a shift cascades until it reaches a gap.

    Returns only the queues whose priority changes (the fixed ones included when they differ from `current`).
    """
    taken = set(fixed.values())
    result = dict(fixed)
    previous = 0
    for name in sorted((n for n in current if n not in fixed), key=lambda n: (current[n], n)):
        priority = max(current[name], previous + 1)
        while priority in taken:
            priority += 1
        taken.add(priority)
        result[name] = priority
        previous = priority
    return {name: p for name, p in result.items() if current.get(name) != p}
