"""Typer's per-parameter value coercion, built only for a value that needs it.

Typer coerces every parameter it processes through a pydantic `TypeAdapter`, built on first use; a parameter
left unset (`None`) or a plain string for a `str` parameter builds one too, though the adapter would hand the
value back unchanged. Importing pydantic and building the adapters was most of `wp work-pool --help` and of
`wp work-pool ls` through a server. `defer_coercion` gives each parameter a stand-in that returns, unchanged,
exactly the values Typer's adapter returns unchanged (`None` for a single value, an exact `str` for a `str`
parameter without a parser, an in-range whole number for an `int` one) and builds Typer's own coercion for
anything else, so errors and conversions stay Typer's. Must never convert a value itself.
"""

from __future__ import annotations

import re
from typing import Any

# A whole number pydantic's lax `int` parsing reads as `int(text)`: no sign, spaces, `_` or leading zeros.
_PLAIN_INT = re.compile(r"0|[1-9][0-9]{0,17}")


class DeferredCoercion:
    """Stands in for Typer's `RuntimeParam` of one parameter until a value needs the real one."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        unchanged = _unchanged(value, param)
        if unchanged is not None:
            return unchanged[0]
        from typer._coercion import build_runtime_param

        param._runtime_param = build_runtime_param(param.type_descriptor)
        return param._runtime_param.coerce(value, param=param, ctx=ctx)


def _unchanged(value: Any, param: Any) -> tuple[Any] | None:
    """`(value,)` when Typer's coercion would return `value` as it is, else None."""
    if param.multiple or param.nargs != 1:
        return None
    if value is None:  # Typer's `RuntimeParam.coerce` returns None before its adapter is used
        return (None,)
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return None
    annotation = descriptor.annotation
    if annotation is str and type(value) is str:
        return (value,)
    if annotation is int and not info.clamp:
        number = value if type(value) is int else None
        if type(value) is str and _PLAIN_INT.fullmatch(value):
            number = int(value)
        if number is None:
            return None
        if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
            return None  # out of range: Typer's adapter says why
        return (number,)
    return None


def defer_coercion(command: Any) -> None:
    """Give every parameter of `command` (not its subcommands) a `DeferredCoercion`, where Typer has not
    built its own yet."""
    for param in command.params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = DeferredCoercion()
