"""The no-op shortcut prints a plan with no changes without building one (engine/render_noop.py): byte for
byte what the renderers print for an empty plan, in every form."""

from __future__ import annotations

from reconciler.engine.plan import Plan
from reconciler.engine.render import render_compact, render_markdown, render_text
from reconciler.engine.render_noop import noop_compact, noop_markdown, noop_text


def test_the_noop_forms_are_the_renderers_own() -> None:
    empty = Plan("data-platform", ())
    assert noop_text(color=True) == render_text(empty, color=True)
    assert noop_text(color=False) == render_text(empty, color=False)
    assert noop_compact() == render_compact(empty)
    assert noop_markdown("data-platform") == render_markdown(empty)
