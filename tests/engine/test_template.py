"""Placeholder semantics, layering, validation and the sandbox of base job templates (SPEC §1)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.template import (
    check_template,
    effective_variables,
    explain_job_configuration,
    placeholders,
    render_job_configuration,
)
from reconciler.engine.template_variables import validate_job_variables
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate


def template(job_configuration: dict[str, Any], **properties: dict[str, Any]) -> BaseJobTemplate:
    return BaseJobTemplate(
        job_configuration=job_configuration, variables={"type": "object", "properties": properties}
    )


ANY: dict[str, Any] = {}
ENV_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}


# ------------------------------------------------------------------------------------------ substitution


def test_a_whole_placeholder_keeps_the_value_type() -> None:
    t = template(
        {"d": "{{ d }}", "l": "{{ l }}", "n": "{{ n }}", "b": "{{ b }}", "s": "{{ s }}"},
        d=ANY, l=ANY, n=ANY, b=ANY, s=ANY,
    )  # fmt: skip
    values = {"d": {"a": [1, 2]}, "l": [1, "x"], "n": 2.5, "b": False, "s": "123"}
    assert render_job_configuration(t, values) == values


def test_an_unset_whole_placeholder_removes_its_key_and_list_item() -> None:
    t = template({"keep": 1, "gone": "{{ x }}", "items": ["a", "{{ x }}", "{{ y }}"]}, x=ANY, y=ANY)
    assert render_job_configuration(t, {"y": "b"}) == {"keep": 1, "items": ["a", "b"]}


def test_a_null_default_counts_as_no_value_but_a_real_default_is_used() -> None:
    t = template({"a": "{{ a }}", "b": "{{ b }}"}, a={"default": None}, b={"default": 7})
    assert render_job_configuration(t, {}) == {"b": 7}


def test_a_placeholder_inside_text_renders_as_text_and_empty_when_unset() -> None:
    t = template({"name": "{{ prefix }}-job-{{ n }}", "flag": "--x={{ on }}", "u": "[{{ unset }}]"},
                 prefix=ANY, n=ANY, on=ANY, unset=ANY)  # fmt: skip
    assert render_job_configuration(t, {"prefix": "etl", "n": 3, "on": True}) == {
        "name": "etl-job-3",
        "flag": "--x=true",
        "u": "[]",
    }


def test_dotted_paths_read_into_mappings_even_where_a_dict_method_has_the_same_name() -> None:
    t = template({"a": "{{ env.FOO }}", "b": "{{ env.items }}", "c": "{{ env.MISSING }}"}, env=ENV_SCHEMA)
    assert render_job_configuration(t, {"env": {"FOO": "1", "items": "i"}}) == {"a": "1", "b": "i"}


def test_dollar_var_reads_the_environment_passed_in_and_is_empty_when_unset() -> None:
    t = template({"home": "{{ $HOME }}", "path": "{{ $HOME }}/x", "none": "{{ $NOPE }}"})
    assert render_job_configuration(t, {}, env={"HOME": "/h"}) == {"home": "/h", "path": "/h/x", "none": ""}


def test_context_names_are_available_and_need_no_declaration() -> None:
    t = template({"name": "{{ flow_run.name }}"})
    assert check_template(t) == []
    assert render_job_configuration(t, {}, context={"flow_run": {"name": "brave-fox"}}) == {
        "name": "brave-fox"
    }


def test_jinja_statements_stay_literal_text() -> None:
    t = template({"cmd": "echo ${#arr[@]} {% raw %}"})
    assert render_job_configuration(t, {}) == {"cmd": "echo ${#arr[@]} {% raw %}"}


def test_rendering_does_not_mutate_or_share_the_inputs() -> None:
    t = template({"d": "{{ d }}"}, d={"default": {"k": [1]}})
    out = render_job_configuration(t, {})
    out["d"]["k"].append(2)
    assert t.variables["properties"]["d"]["default"] == {"k": [1]}


# ------------------------------------------------------------------------------------------ layering


def test_layers_override_defaults_then_deployment_then_run_replacing_whole_values() -> None:
    t = template(
        {}, image={"default": "base"}, labels={"default": {"a": "1", "b": "2"}}, cpu={"default": "1"}
    )
    eff = effective_variables(t, {"image": "dep", "labels": {"c": "3"}}, {"image": "run"})
    assert eff == {"image": "run", "labels": {"c": "3"}, "cpu": "1"}


def test_env_merges_key_by_key_across_every_layer_including_literal_entries() -> None:
    t = template(
        {"env": {"LITERAL": "pool", "SHARED": "pool"}},
        env={**ENV_SCHEMA, "default": {"DEFAULT": "d", "SHARED": "default"}},
    )
    dep = {"env": {"DEP": "dep", "SHARED": "dep"}}
    run = {"env.RUN": "run"}
    expected = {"LITERAL": "pool", "DEFAULT": "d", "DEP": "dep", "RUN": "run", "SHARED": "dep"}
    assert effective_variables(t, dep, run)["env"] == expected
    assert render_job_configuration(t, dep, run)["env"] == expected


def test_an_env_dot_key_sets_one_entry_and_null_unsets_an_inherited_one() -> None:
    t = template({"env": "{{ env }}"}, env={**ENV_SCHEMA, "default": {"A": "1", "B": "2"}})
    assert render_job_configuration(t, {"env.C": "3"}, {"env.A": None}) == {"env": {"B": "2", "C": "3"}}


def test_explain_names_the_layer_each_value_comes_from() -> None:
    t = template(
        {"env": {"LIT": "x"}, "image": "{{ image }}", "mode": "fixed"},
        image={"default": "base"}, cpu={"default": "1"}, env=ENV_SCHEMA,
    )  # fmt: skip
    sources = explain_job_configuration(t, {"image": "dep", "env": {"A": "1"}}, {"env.B": "2"})
    assert sources["image"] == "deployment"
    assert sources["cpu"] == "default"
    assert sources["env.LIT"] == "pool"
    assert sources["env.A"] == "deployment"
    assert sources["env.B"] == "run"
    assert sources["mode"] == "pool"


# ------------------------------------------------------------------------------------------ validation


K8S_LIKE = template(
    {"image": "{{ image }}", "cpu": "{{ cpu }}", "env": "{{ env }}"},
    image={"type": "string"}, cpu={"type": "integer", "minimum": 1}, env=ENV_SCHEMA,
)  # fmt: skip
REQUIRED = BaseJobTemplate(
    job_configuration={"image": "{{ image }}"},
    variables={"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]},
)


def test_an_unknown_key_is_refused_naming_it_and_the_allowed_ones() -> None:
    [problem] = validate_job_variables(K8S_LIKE, {"imgae": "x"})
    assert problem.path == ("imgae",)
    assert "'imgae'" in problem.message
    assert "cpu, env, image" in problem.message


def test_wrong_types_are_reported_with_their_path() -> None:
    problems = validate_job_variables(K8S_LIKE, {"cpu": "two", "env.FOO": 3})
    assert {p.path for p in problems} == {("cpu",), ("env", "FOO")}
    assert any("not of type 'integer'" in p.message for p in problems)


def test_valid_variables_and_env_dot_keys_pass() -> None:
    assert validate_job_variables(K8S_LIKE, {"cpu": 2, "env.FOO": "bar", "image": None}) == []


def test_required_is_enforced_only_for_runs() -> None:
    assert validate_job_variables(REQUIRED, {}) == []
    [problem] = validate_job_variables(REQUIRED, {}, for_run=True)
    assert "'image' is a required property" in problem.message
    assert validate_job_variables(REQUIRED, {"image": "x"}, for_run=True) == []


def test_an_explicit_additional_properties_schema_accepts_unknown_keys() -> None:
    t = BaseJobTemplate(variables={"type": "object", "properties": {}, "additionalProperties": True})
    assert validate_job_variables(t, {"anything": 1}) == []


def test_secret_values_are_not_quoted_in_validation_messages() -> None:
    t = template({}, API_TOKEN={"type": "integer"})
    [problem] = validate_job_variables(t, {"API_TOKEN": "s3cr3t"})
    assert "s3cr3t" not in problem.message


# ------------------------------------------------------------------------------------------ check_template


def test_undeclared_placeholders_are_reported_with_their_path() -> None:
    t = template({"spec": {"image": "{{ image }}", "args": ["{{ comand }}"]}}, image=ANY, command=ANY)
    [problem] = check_template(t)
    assert problem.path == ("job_configuration", "spec", "args", 0)
    assert "'comand'" in problem.message and "command, image" in problem.message


def test_invalid_defaults_and_non_object_schemas_are_reported() -> None:
    bad_default = template({"n": "{{ n }}"}, n={"type": "integer", "default": "ten"})
    [problem] = check_template(bad_default)
    assert problem.path == ("variables", "properties", "n", "default")
    not_object = BaseJobTemplate(variables={"type": "array"})
    assert check_template(not_object)[0].path == ("variables",)


def test_placeholders_lists_top_level_names_but_not_env_refs_or_context() -> None:
    jc = {"a": "{{ env.FOO }}", "b": ["x-{{ name }}"], "c": "{{ $HOME }}", "d": "{{ flow_run.id }}", "e": 1}
    assert placeholders(jc) == {"env", "name"}


def test_a_syntax_error_is_a_problem_not_a_traceback() -> None:
    t = template({"a": "{{ x "}, x=ANY)
    [problem] = check_template(t)
    assert "invalid placeholder syntax" in problem.message
    with pytest.raises(ValidationError):
        render_job_configuration(t, {})


# ------------------------------------------------------------------------------------------ sandbox


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__ }}",
        "{{ x.__class__.__mro__ }}",
        "{{ x['__class__'] }}",
        "{{ x | attr('__class__') }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{{ x.upper() }}",
        "{{ 'a' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{{ '%0999999999d' % 1 }}",
    ],
)
def test_escapes_and_resource_exhaustion_are_refused(expression: str) -> None:
    t = template({"a": expression}, x={"default": "s"})
    with pytest.raises(ValidationError) as err:
        render_job_configuration(t, {})
    assert err.value.path == ("job_configuration", "a")


def test_harmless_expressions_still_work() -> None:
    t = template(
        {"a": "{{ x | upper }}", "b": "{{ y | default('dflt') }}", "c": "{{ n + 1 }}"}, x=ANY, y=ANY, n=ANY
    )
    assert render_job_configuration(t, {"x": "ab", "n": 1}) == {"a": "AB", "b": "dflt", "c": 2}


RENDER_ONLY = """
import sys
from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.template import render_job_configuration
from reconciler.model import BaseJobTemplate

for kind in ("process", "docker", "kubernetes"):
    t = BaseJobTemplate.model_validate(default_base_job_template(kind))
    render_job_configuration(t, {"env": {"A": "1"}}, None, env={}, context={"flow_run": {"name": "r"}})
print(sorted(m for m in ("jsonschema", "referencing", "rpds", "regex") if m in sys.modules))
"""


def test_rendering_a_job_imports_no_schema_validation_libraries() -> None:
    # A worker renders every run's job but never validates variables (the store did): jsonschema, referencing,
    # rpds and regex were 5 MB of its memory.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", RENDER_ONLY], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    # and validating still works where it is asked for
    bad = template({"image": "{{ image }}"}, image={"type": "string"})
    assert validate_job_variables(bad, {"image": 3})
