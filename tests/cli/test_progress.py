"""A progress bar on long applies, destroys and imports: on a terminal only, never with --json or in a pipe."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from test_compact_plan import _many
from wp_cli import ISOLATED, WP_SCRIPT, ProjectWriter, Wp

from reconciler.cli.progress import BIG_PLAN


def on_a_terminal(home: Path, *args: str | Path) -> tuple[int, str]:
    """`wp ARGS` with stdout and stderr on a pseudo-terminal, as a person at a shell runs it."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env.update(WP_HOME=str(home), COLUMNS="160", TERM="xterm-256color")
    proc = subprocess.Popen(
        [str(WP_SCRIPT), *map(str, args)], stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal's other end closed: wp exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_a_big_apply_shows_progress_on_a_terminal_only(wp: Wp, project: ProjectWriter, home: Path) -> None:
    big = project("big", _many(BIG_PLAN))
    code, shown = on_a_terminal(home, "apply", big, "--auto-approve")
    assert code == 0, shown
    assert "Applying: writing" in shown and f"{BIG_PLAN + 1}/{BIG_PLAN + 1}" in shown
    assert "Apply complete!" in shown
    # --json on the same terminal: nothing but the JSON document
    code, shown = on_a_terminal(home, "destroy", big, "--auto-approve", "--json")
    assert code == 0, shown
    assert "Destroying" not in shown and json.loads(shown)["summary"]["destroy"] > BIG_PLAN
    # piped, as in CI: no bar either
    piped = wp("apply", big, "--auto-approve")
    assert piped.code == 0 and "Applying:" not in piped.stdout + piped.stderr


def test_a_small_apply_shows_no_bar_even_on_a_terminal(project: ProjectWriter, home: Path) -> None:
    code, shown = on_a_terminal(home, "apply", project("small", _many(3)), "--auto-approve")
    assert code == 0 and "Apply complete!" in shown and "Applying:" not in shown


def test_import_all_shows_its_phases_on_a_terminal(wp: Wp, home: Path) -> None:
    assert wp("work-pool", "create", "handmade").code == 0
    code, shown = on_a_terminal(home, "import", "--all")
    assert code == 0, shown
    assert "Importing: reading the store" in shown and "name: handmade" in shown
    piped = wp("import", "--all")
    assert piped.code == 0 and "Importing" not in piped.stdout + piped.stderr
