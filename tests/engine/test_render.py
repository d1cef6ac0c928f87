"""render_text / render_markdown / render_json: the plan a user reads, in each format."""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.engine.plan import Action, AttributeChange, Change, Note, Plan, Reason, plan_from_json
from reconciler.engine.render import render_json, render_markdown, render_text
from reconciler.model import Key, Kind

POOL_BEFORE: dict[str, Any] = {
    "name": "k8s-prod",
    "type": "kubernetes",
    "description": None,
    "paused": False,
    "concurrency_limit": 10,
    "base_job_template": {"job_configuration": {}, "variables": {}},
}
POOL_AFTER = {**POOL_BEFORE, "concurrency_limit": 20}
DEP_AFTER = {
    "flow": "etl",
    "name": "nightly",
    "entrypoint": "flows/etl.py:etl",
    "job_variables": {"env": {"API_TOKEN": "hunter2", "LOG_LEVEL": "info"}},
    "tags": ["etl"],
}
UPDATE = Change(
    Key(Kind.WORK_POOL, "k8s-prod"),
    Action.UPDATE,
    POOL_BEFORE,
    POOL_AFTER,
    Reason.CONFIG_CHANGED,
    (AttributeChange("concurrency_limit", 10, 20),),
    owner_before="p",
)
CREATE = Change(Key(Kind.DEPLOYMENT, "etl/nightly"), Action.CREATE, None, DEP_AFTER, Reason.NOT_IN_STORE)
PLAN = Plan("p", (UPDATE, CREATE))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_text_follows_the_spec_layout() -> None:
    text = render_text(PLAN, color=False)
    assert text.startswith("wp will perform the following actions:\n\n")
    assert (
        "  # work_pool.k8s-prod will be updated in-place\n"
        '  ~ work_pool "k8s-prod" {\n'
        "      ~ concurrency_limit = 10 -> 20\n"
        "        # (5 unchanged attributes hidden)\n"
        "    }\n"
    ) in text
    assert '  # deployment.etl/nightly will be created\n  + deployment "etl/nightly" {\n' in text
    assert '      + entrypoint    = "flows/etl.py:etl"\n' in text
    assert '      + tags          = ["etl"]\n' in text
    assert text.rstrip().endswith("Plan: 1 to add, 1 to change, 0 to destroy.")


def test_no_changes_message() -> None:
    noop = Change(UPDATE.key, Action.NOOP, POOL_BEFORE, POOL_BEFORE)
    assert (
        render_text(Plan("p", (noop,)), color=False)
        == "No changes. Your work pools match the configuration.\n"
    )


def test_secrets_are_masked_in_every_format() -> None:
    for output in (render_text(PLAN, color=False), render_markdown(PLAN), render_json(PLAN)):
        assert "hunter2" not in output
        assert "(sensitive)" in output


def test_secret_update_shows_neither_value() -> None:
    change = Change(
        CREATE.key,
        Action.UPDATE,
        {"job_variables": {"env": {"DB_PASSWORD": "old"}}},
        {"job_variables": {"env": {"DB_PASSWORD": "new"}}},
        Reason.CONFIG_CHANGED,
        (AttributeChange("job_variables.env.DB_PASSWORD", "old", "new"),),
    )
    text = render_text(Plan("p", (change,)), color=False)
    assert '~ job_variables.env.DB_PASSWORD = "(sensitive)" -> "(sensitive)"' in text
    assert '"old"' not in text and '"new"' not in text


def test_colour_changes_only_styling() -> None:
    coloured = render_text(PLAN, color=True)
    assert "\x1b[32m+\x1b[0m" in coloured  # green create
    assert "\x1b[33m~\x1b[0m" in coloured  # yellow update
    assert ANSI.sub("", coloured) == render_text(PLAN, color=False)
    assert "\x1b[" not in render_text(PLAN, color=False)


def test_delete_and_replace_symbols_and_colours() -> None:
    delete = Change(UPDATE.key, Action.DELETE, POOL_BEFORE, None, Reason.NOT_DECLARED, owner_before="p")
    replace = Change(
        Key(Kind.WORK_POOL, "b"),
        Action.REPLACE,
        POOL_BEFORE,
        {**POOL_BEFORE, "type": "docker"},
        Reason.CANNOT_UPDATE,
        (AttributeChange("type", "kubernetes", "docker", True),),
    )
    plan = Plan("p", (delete, replace))
    text = render_text(plan, color=False)
    assert '  - work_pool "k8s-prod" {\n' in text and "      - concurrency_limit = 10\n" in text
    assert "# (because it is no longer declared and prune is on)" in text
    assert '  -/+ work_pool "b" {\n      ~ type = "kubernetes" -> "docker" # forces replacement\n' in text
    assert "Plan: 1 to add, 0 to change, 2 to destroy." in text
    coloured = render_text(plan, color=True)
    assert "\x1b[31m-\x1b[0m" in coloured and "\x1b[35m-/+\x1b[0m" in coloured


def test_notes_warnings_and_drift_are_shown() -> None:
    noted = Change(
        UPDATE.key,
        Action.UPDATE,
        POOL_BEFORE,
        POOL_AFTER,
        Reason.CONFIG_CHANGED,
        UPDATE.attributes,
        notes=(Note("runs_in_flight", "3 runs in flight"),),
    )
    drift = Change(
        UPDATE.key,
        Action.UPDATE,
        POOL_BEFORE,
        {**POOL_BEFORE, "paused": True},
        Reason.CHANGED_OUTSIDE,
        (AttributeChange("paused", False, True),),
    )
    plan = Plan("p", (noted,), drift=(drift,), warnings=("work_queue.x/y is not declared; kept",))
    text = render_text(plan, color=False)
    assert text.startswith("Objects changed outside wp since the last apply:\n\n")
    assert "  # work_pool.k8s-prod was changed outside wp\n" in text and "~ paused = false -> true" in text
    assert "    # note: 3 runs in flight\n" in text
    assert text.endswith("Warnings:\n  - work_queue.x/y is not declared; kept\n")
    md = render_markdown(plan)
    assert "- `work_pool.k8s-prod`: 3 runs in flight" in md and "Objects changed outside wp" in md


def test_show_unchanged_lists_the_hidden_attributes() -> None:
    text = render_text(PLAN, color=False, show_unchanged=True)
    assert '        type              = "kubernetes"\n' in text
    assert "unchanged attributes hidden" not in text


def test_markdown_is_a_pr_comment_with_a_diff_block() -> None:
    md = render_markdown(PLAN)
    assert "**Plan: 1 to add, 1 to change, 0 to destroy.**" in md
    assert "<details><summary>Show plan</summary>" in md and "</details>" in md
    block = md.split("```diff\n", 1)[1].split("\n```", 1)[0]
    assert '! ~ work_pool "k8s-prod" {' in block  # column 0 marks let GitHub colour the lines
    assert '+ + deployment "etl/nightly" {' in block
    assert "| `~` | `work_pool.k8s-prod` | update | update_because_config_changed |" in md
    noop = Plan("p", (Change(UPDATE.key, Action.NOOP, POOL_BEFORE, POOL_BEFORE),))
    assert "No changes. Your work pools match the configuration." in render_markdown(noop)


def test_json_is_the_spec_plan_file_and_reads_back() -> None:
    data = json.loads(render_json(PLAN))
    assert data["format_version"] == "1.0"
    assert [(rc["address"], rc["actions"]) for rc in data["resource_changes"]] == [
        ("work_pool.k8s-prod", ["update"]),
        ("deployment.etl/nightly", ["create"]),
    ]
    assert data["resource_changes"][1]["action_reason"] == "create_because_not_in_store"
    assert data["resource_changes"][1]["after"]["job_variables"]["env"]["API_TOKEN"] == "(sensitive)"
    back = plan_from_json(data)
    assert [c.action for c in back.changes] == [Action.UPDATE, Action.CREATE]
    assert render_json(PLAN) == render_json(PLAN)
