"""Environment substitution and defaults of the normalizer."""

from __future__ import annotations

from reconciler.config.normalize import schedule_slug, substitute_env
from reconciler.config.schema import ScheduleDoc
from reconciler.config.sources import Positions


def test_substitution_forms() -> None:
    doc = {
        "a": "${X}-${MISSING:-fallback}",
        "b": "{{ $X }}",
        "c": "$${X} stays literal",
        "work_pools": [{"base_job_template": {"job_configuration": {"t": "{{ $X }}", "u": "${X}"}}}],
    }
    out, diagnostics = substitute_env(doc, {"X": "1"}, Positions())
    assert diagnostics == []
    assert out["a"] == "1-fallback" and out["b"] == "1" and out["c"] == "${X} stays literal"
    assert out["work_pools"][0]["base_job_template"]["job_configuration"] == {"t": "{{ $X }}", "u": "1"}
    assert doc["a"] == "${X}-${MISSING:-fallback}"  # input not mutated


def test_each_missing_variable_is_one_diagnostic() -> None:
    _, diagnostics = substitute_env({"a": "${A}", "b": ["{{ $B }}"]}, {}, Positions())
    assert [(d.summary, d.path) for d in diagnostics] == [
        ("environment variable 'A' is not set", ("a",)),
        ("environment variable 'B' is not set", ("b", 0)),
    ]


def test_schedule_without_slug_gets_a_stable_one_from_its_definition() -> None:
    first = schedule_slug(ScheduleDoc(cron="0 2 * * *"))
    assert first.startswith("cron-")
    assert first == schedule_slug(ScheduleDoc(cron="0 2 * * *", active=False))
    assert first != schedule_slug(ScheduleDoc(cron="0 3 * * *"))
    assert schedule_slug(ScheduleDoc(slug="mine", interval=60)) == "mine"
