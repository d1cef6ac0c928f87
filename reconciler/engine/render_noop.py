"""The output of a plan with no changes, without building one: what the renderers of `render.py` print for an
empty plan (no changes, drift or warnings), for the no-op shortcut, which must print the same bytes without
importing the model. Tests check it against those renderers, format by format.

Must never do I/O or decide anything: it only spells the empty plan.
"""

from __future__ import annotations

NO_CHANGES = "No changes. Your work pools match the configuration."
_GREEN, _RESET = "\x1b[32m", "\x1b[0m"  # rich's "green" in the standard colour system


def noop_text(*, color: bool) -> str:
    """render_text of an empty plan."""
    return f"{_GREEN}{NO_CHANGES}{_RESET}\n" if color else NO_CHANGES + "\n"


def noop_compact() -> str:
    """render_compact of an empty plan."""
    return NO_CHANGES


def noop_markdown(project: str) -> str:
    """render_markdown of an empty plan of `project`."""
    return f"### wp plan: project `{project}`\n\n**{NO_CHANGES}**\n"
