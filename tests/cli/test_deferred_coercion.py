"""Deferred coercion (reconciler.cli.coercion) returns what Typer's own coercion returns, and refuses what it
refuses with the same message; and the pool `wp work-pool create` builds without the model is the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import BadParameter

from reconciler.cli.coercion import DeferredCoercion
from reconciler.cli.lazy import build_command
from reconciler.cli.pools import _new_pool


def _params() -> dict[str, Any]:
    """Parameters of real commands: a `str` argument, `str` and `int` options with and without a minimum."""

    demo = typer.Typer()

    @demo.command()
    def run(
        name: str,
        kind: str = typer.Option("process", "--kind"),
        limit: int | None = typer.Option(None, "--limit", min=0),
        count: int = typer.Option(10, "--count"),
        ranged: int = typer.Option(5, "--ranged", min=1, max=9),
        clamped: int = typer.Option(5, "--clamped", min=1, max=9, clamp=True),
        ratio: float = typer.Option(0.5, "--ratio"),
    ) -> None:
        """Demo."""

    command = typer.main.get_command(demo)
    params = {p.name: p for p in command.params}
    params["concurrency_limit"] = next(
        p for p in build_command("work-pool").commands["create"].params if p.name == "concurrency_limit"
    )
    return params


VALUES = [
    None,
    "",
    "x",
    "007",
    "0",
    "5",
    "-1",
    "+5",
    " 5",
    "5_0",
    "5.0",
    "1e3",
    "9" * 30,
    0,
    5,
    -1,
    12,
    True,
    1.5,
]


def _outcome(coercion: Any, param: Any, value: Any) -> tuple[str, Any]:
    ctx = typer.Context(build_command("work-pool"))
    try:
        result = coercion.coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return ("refused", exc.format_message())
    return ("ok", (type(result), result))


@pytest.mark.parametrize("name", list(_params()))
def test_deferred_coercion_returns_and_refuses_as_typer_does(name: str) -> None:
    from typer._coercion import build_runtime_param

    param = _params()[name]
    for value in VALUES:
        param._runtime_param = None
        expected = _outcome(build_runtime_param(param.type_descriptor), param, value)
        param._runtime_param = DeferredCoercion()
        assert _outcome(param._runtime_param, param, value) == expected, (name, value)


def test_the_deferred_coercion_leaves_typers_own_in_place_once_built() -> None:
    param = _params()["limit"]
    param._runtime_param = DeferredCoercion()
    _outcome(param._runtime_param, param, "12")
    assert isinstance(param._runtime_param, DeferredCoercion)  # a plain whole number: nothing built
    _outcome(param._runtime_param, param, "+12")
    assert not isinstance(param._runtime_param, DeferredCoercion)


@pytest.mark.parametrize(
    "args",
    [
        ("p", "process", False, None, None),
        ("k8s ünï", "kubernetes", True, "d", 0),
        ("d", "docker", False, "", 3),
    ],
)
def test_the_pool_create_sends_without_the_model_is_the_models_dump(args: tuple[Any, ...]) -> None:
    from reconciler.engine.job_templates import default_base_job_template
    from reconciler.model import WorkPool

    name, type_, paused, description, limit = args
    ours = _new_pool(name, type_, paused, description, limit, None)
    model = WorkPool(
        name=name,
        type=type_,
        paused=paused,
        description=description,
        concurrency_limit=limit,
        base_job_template=default_base_job_template(type_),
    ).model_dump(mode="json")
    assert ours == model and list(ours) == list(model)


def test_a_template_file_still_goes_through_the_model(tmp_path: Path) -> None:
    template = tmp_path / "t.json"
    template.write_text(
        '{"job_configuration": {"command": "{{ command }}"},'
        ' "variables": {"type": "object", "properties": {"command": {"type": "string"}}}}'
    )
    pool = _new_pool("p", "process", False, None, None, template)
    assert pool["base_job_template"]["job_configuration"] == {"command": "{{ command }}"}


def test_a_value_the_model_refuses_still_goes_through_the_model() -> None:
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        _new_pool("p", "process", False, None, -1, None)
    with pytest.raises(pydantic.ValidationError, match="contains /"):
        _new_pool("a/b", "process", False, None, None, None)
