"""Pausing Python's cyclic garbage collector while a stage builds a large, acyclic object graph.

Loading a 10,000-deployment project or reading its snapshot allocates close to a million container objects
(YAML nodes, dicts, models) that all survive; every such allocation burst triggers full collections that walk
the whole heap again and find nothing, which took two thirds of a plan's time. Those graphs hold no reference
cycles, so pausing the collector for the stage changes no result, only when unreachable cycles are reclaimed.

Owns `collector_paused()`, and nothing else. Must never change what a stage computes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # nested or concurrent pauses: the collector comes back when the last one ends
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (nesting and threads are safe); reference counting
    still frees everything acyclic at once."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _promote_survivors()
                if _was_enabled:
                    gc.enable()


def _promote_survivors() -> None:
    """Move every tracked object to the oldest generation without scanning it.

    All that a paused stage allocated is still counted in the youngest generation; the first allocation
    after the pause would then scan every survivor (the whole plan, snapshot and config: 0.6 s at 10,000
    deployments), and again when they age. Freezing and unfreezing splices the generations' lists onto the
    oldest one in constant time; unreachable cycles are still found by the next full collection. Skipped when
    someone else keeps objects frozen (unfreezing would release theirs)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
