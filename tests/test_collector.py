"""collector_paused: the cyclic garbage collector is off inside, back as it was after, nesting included."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from reconciler.collector import collector_paused


def test_the_collector_is_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause ending does not end the outer one
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_it_decorates_a_function() -> None:
    @collector_paused()
    def inside() -> bool:
        return gc.isenabled()

    assert inside() is False and gc.isenabled()


def test_an_apply_writes_with_the_collector_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 24,000-object apply ran two full collections over the whole plan (0.3 s) while writing it."""
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.plan import Action, Change, Plan, Reason
    from reconciler.model import WorkPool, attributes, pool_key
    from reconciler.store import objects
    from reconciler.store.sql import SqlStore

    seen: list[bool] = []
    write = objects.PlanWriter.write

    def watched(self: objects.PlanWriter) -> None:
        seen.append(gc.isenabled())
        write(self)

    monkeypatch.setattr(objects.PlanWriter, "write", watched)
    store = SqlStore(f"sqlite:///{tmp_path}/wp.db")
    try:
        change = Change(
            pool_key("p"), Action.CREATE, None, attributes(WorkPool(name="p")), Reason.NOT_IN_STORE
        )
        apply_plan(store, Plan("demo", (change,)), actor="test")
        assert seen == [False]
        assert gc.isenabled()
        assert [p.name for p in store.list_work_pools()] == ["p"]
    finally:
        store.close()
