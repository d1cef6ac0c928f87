"""The plan comment's text: its hidden header read back, what is and is not ours, and cutting to GitHub's limit."""

from __future__ import annotations

import re

import pytest

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.gitops.pr_comment import (
    COMMENT_LIMIT,
    HEADER_VERSION,
    CommentHeader,
    comment_body,
    diagnostics_markdown,
    fit_markdown,
    header_line,
    normalize_path,
    parse_header,
)

HASH = "ab" * 32


def test_the_header_round_trips_and_is_hidden_on_the_first_line() -> None:
    body = comment_body(CommentHeader("infra", HASH), "### wp plan\n\nPlan: 1 to add.", footer="<sub>x</sub>")
    first, rest = body.split("\n", 1)
    assert first.startswith("<!-- wp-plan {") and first.endswith(" -->")
    assert rest.startswith("### wp plan")
    assert rest.endswith("<sub>x</sub>")
    assert parse_header(body) == CommentHeader("infra", HASH, HEADER_VERSION, False)


def test_a_failed_plan_has_no_hash() -> None:
    assert parse_header(comment_body(CommentHeader(".", None), "errors")) == CommentHeader(".", None)


def test_edits_below_the_header_do_not_matter() -> None:
    body = (
        comment_body(CommentHeader("infra", HASH), "plan")
        + "\n\nEdited by a reviewer: LGTM <!-- wp-plan {} -->"
    )
    assert parse_header(body) == CommentHeader("infra", HASH)
    assert parse_header("\n  " + body) == CommentHeader("infra", HASH)  # leading blank space only


@pytest.mark.parametrize(
    "body",
    [
        "",
        "Looks good to me",
        "LGTM\n" + header_line(CommentHeader("infra", HASH)),  # a quote of the header further down
        "<!-- wp-plan not json -->\nplan",
        '<!-- wp-plan ["infra"] -->',
        '<!-- wp-plan {"plan_hash":"x","version":1} -->',  # no path
        '<!-- wp-plan {"path":3,"plan_hash":"x","version":1} -->',
        '<!-- wp-plan {"path":"infra","plan_hash":5,"version":1} -->',
        '<!-- wp-plan {"path":"infra","plan_hash":"x","version":"1"} -->',
        '<!-- wp-plan {"path":"infra","plan_hash":"x","version":true} -->',
        '<!-- dflook/terraform-github-actions {"path":"infra","plan_hash":"x","version":1} -->',
    ],
)
def test_a_body_without_a_valid_header_is_not_ours(body: str) -> None:
    assert parse_header(body) is None


def test_a_path_cannot_end_the_hidden_comment_early() -> None:
    header = CommentHeader("odd-->dir<b>", HASH)
    line = header_line(header)
    assert line.count("-->") == 1 and line.endswith("-->")
    assert "<b>" not in line
    assert parse_header(line + "\nplan") == header


@pytest.mark.parametrize(
    ("given", "key"),
    [(".", "."), ("./", "."), ("", "."), ("infra", "infra"), ("./infra/", "infra"), ("a//b/../c", "a/c")],
)
def test_one_spelling_per_project_directory(given: str, key: str) -> None:
    assert normalize_path(given) == key


def _plan_markdown(blocks: int) -> str:
    lines = ["### wp plan: project `big`", "", "**Plan: many to add.**", ""]
    for i in range(blocks):
        lines += ["<details><summary>Show plan</summary>", "", "```diff"]
        lines += [f'+ deployment "flow/d{i}-{j}" {{ entrypoint = "flows/f.py:f" }}' for j in range(40)]
        lines += ["```", "", "</details>", ""]
    return "\n".join(lines)


def test_a_long_plan_is_cut_under_the_limit_and_says_so() -> None:
    markdown = _plan_markdown(60)
    assert len(markdown) > 2 * COMMENT_LIMIT
    body = comment_body(CommentHeader("infra", HASH), markdown, footer="<sub>footer</sub>")
    assert len(body) <= COMMENT_LIMIT < 65_536
    assert parse_header(body) == CommentHeader("infra", HASH, truncated=True)
    assert "too long for a comment" in body and "job summary" in body
    assert body.endswith("<sub>footer</sub>")
    # Whatever was cut, every code block and collapsible section that was opened is closed again.
    assert len(re.findall(r"^```", body, re.M)) % 2 == 0
    assert body.count("<details>") == body.count("</details>")
    assert "d0-0" in body and "d59-39" not in body


def test_a_short_plan_is_kept_whole() -> None:
    markdown = _plan_markdown(2)
    body = comment_body(CommentHeader("infra", HASH), markdown)
    assert body.split("\n", 1)[1] == markdown.rstrip()
    assert parse_header(body) == CommentHeader("infra", HASH, truncated=False)


def test_cutting_counts_bytes_when_asked() -> None:
    text = "\n".join(["é" * 100] * 100)  # 10,100 characters, 20,100 bytes
    cut, was_cut = fit_markdown(text, 15_000, note="cut", size=lambda s: len(s.encode()))
    assert was_cut and len(cut.encode()) <= 15_000
    assert fit_markdown(text, 15_000, note="cut") == (text, False)


def test_diagnostics_show_where_and_what() -> None:
    diagnostics = [
        Diagnostic(
            Severity.ERROR,
            "unknown job variable 'cpu'",
            "job_variables must match <the pool>",
            file="wp.yaml",
            line=14,
            column=5,
            path=("deployments", 0, "work_pool", "job_variables", "cpu"),
        ),
        Diagnostic(Severity.WARNING, "only a warning"),
        Diagnostic(Severity.ERROR, "no wp.yaml in /x"),
    ]
    text = diagnostics_markdown("infra", diagnostics)
    assert "`infra` has an invalid configuration" in text
    assert "2 errors" in text
    assert (
        "- `wp.yaml:14:5` unknown job variable 'cpu' (at `deployments[0].work_pool.job_variables.cpu`)"
        in text
    )
    assert "&lt;the pool>" in text  # a diagnostic cannot inject HTML into the comment
    assert "- no wp.yaml in /x" in text
    assert "only a warning" not in text
