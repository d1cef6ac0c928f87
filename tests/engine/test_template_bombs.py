"""Templates that try to exhaust memory or read the worker's environment: each is refused with a clear
error while rendering (in the worker and in `wp explain`), quickly and without building the huge value."""

from __future__ import annotations

import resource
import time
from typing import Any

import pytest

from reconciler.engine.template import check_template, render_job_configuration
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate

BIG = "'a' * 1000000"
PAYLOADS = {
    "join of a repeated list": f"{{{{ ([{BIG}] * 1000000) | join }}}}",
    "tojson of a repeated list": f"{{{{ ([{BIG}] * 1000000) | tojson }}}}",
    "string of a repeated list": f"{{{{ ([{BIG}] * 1000000) | string }}}}",
    "join with a 1 MB separator": f"{{{{ (['a'] * 1000000) | join({BIG}) }}}}",
    "chained ~": "{{ " + " ~ ".join([f"({BIG})"] * 300) + " }}",
    "chained +": "{{ " + " + ".join([f"({BIG})"] * 300) + " }}",
    "nested repetition": f"{{{{ ([[{BIG}] * 1000] * 1000) | tojson }}}}",
    "text around chained ~": "x " + "{{ " + " ~ ".join([f"({BIG})"] * 300) + " }} y",
}


def render(text: str, env: dict[str, str] | None = None) -> Any:
    t = BaseJobTemplate(job_configuration={"command": text}, variables={"type": "object", "properties": {}})
    return render_job_configuration(t, {}, env=env or {})


@pytest.mark.parametrize("text", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_a_template_resource_bomb_is_refused_while_rendering(text: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ValidationError, match=r"job_configuration\.command"):
        render(text)
    assert time.monotonic() - started < 5
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200  # MB


def test_a_deeply_nested_expression_is_an_error_not_a_recursion_error() -> None:
    text = "{{ " + "[" * 400 + "1" + "]" * 400 + " }}"
    with pytest.raises(ValidationError):
        render(text)


@pytest.mark.parametrize(
    "text", ["{{ __env__ }}", "{{ __env__ | tojson }}", "{{ __env__.items() }}", "x {{ __env__|string }}"]
)
def test_the_worker_environment_cannot_be_rendered_whole(text: str) -> None:
    t = BaseJobTemplate(job_configuration={"command": text}, variables={"type": "object", "properties": {}})
    assert any("__env__" in str(p) for p in check_template(t)), "validate accepted it"
    with pytest.raises(ValidationError, match="__env__"):
        render(text, env={"WP_API_KEY": "wp-secret-key", "HOME": "/root"})


def test_dollar_var_still_reads_one_variable() -> None:
    assert render("{{ $HOME }}", env={"HOME": "/root"})["command"] == "/root"
    assert render("a {{ $HOME ~ '/x' }} b", env={"HOME": "/root"})["command"] == "a /root/x b"


def test_ordinary_joins_and_concatenations_still_work() -> None:
    assert render("{{ ['a', 'b'] | join('-') }}")["command"] == "a-b"
    assert render("{{ 'x' * 3 ~ 'y' }}")["command"] == "xxxy"
    assert render("{{ [1, 2] + [3] }}")["command"] == [1, 2, 3]


WP_SECRETS = {
    "WP_API_KEY": "wp-secret-key",
    "WP_DATABASE_URL": "postgresql://wp:db-password@db/wp",
    "WP_SYNC_WEBHOOK_SECRET": "hook-secret",
    "WP_SYNC_GIT_TOKEN": "git-token",
}


@pytest.mark.parametrize(
    "text",
    [
        "{{ $WP_API_KEY }}",
        "Bearer {{ $WP_API_KEY }}",
        "{{ $WP_DATABASE_URL | upper }}",
        "{{ $HOME ~ $WP_SYNC_WEBHOOK_SECRET }}",
        "{{ $WP_SYNC_GIT_TOKEN }}",
        "{{ __env__['WP_API_KEY'] }}",
    ],
)
def test_wps_own_credentials_cannot_be_rendered_into_a_job(text: str) -> None:
    t = BaseJobTemplate(
        job_configuration={"env": {"TOKEN": text}}, variables={"type": "object", "properties": {}}
    )
    [problem] = check_template(t)  # wp validate refuses it, naming the field
    assert problem.path == ("job_configuration", "env", "TOKEN")
    assert "WP_" in problem.message and "credential" in problem.message
    with pytest.raises(ValidationError) as refused:  # and a worker never renders it
        render_job_configuration(t, {}, env={**WP_SECRETS, "HOME": "/root"})
    assert not any(secret in str(refused.value) for secret in WP_SECRETS.values())


def test_other_wp_variables_still_render() -> None:
    assert render("{{ $WP_PLATFORM_DIR }}/flows", env={"WP_PLATFORM_DIR": "/srv"})["command"] == "/srv/flows"
