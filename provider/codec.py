"""Terraform values on the wire ↔ Python values, and diagnostics → protocol messages.

Owns the DynamicValue encoding (msgpack, with JSON read as a fallback): unknown values (ext type 0
written, any
ext code read as unknown, refinements included), nulls, numbers sent as strings, objects conformed to a
cty type
so that every attribute is present, and the conversion of `reconciler.diagnostics.Diagnostic` (with its field
path) to `tfplugin6.Diagnostic` with an AttributePath. Must never decide what a value means for a resource.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgpack

from provider._proto import tfplugin6_pb2 as pb
from reconciler.diagnostics import Diagnostic, Severity

# A cty type as Terraform writes it in JSON: "string", "number", "bool", "dynamic",
# ["list", T], ["set", T], ["map", T], ["object", {name: T}], ["tuple", [T, ...]].
CtyType = Any


class Unknown:
    """A value Terraform does not know yet ("known after apply"). One instance: `UNKNOWN`."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown()
_UNKNOWN_EXT = msgpack.ExtType(0, b"\x00")


class DecodeError(ValueError):
    """A DynamicValue that cannot be read."""


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def is_wholly_known(value: Any) -> bool:
    """True when no part of `value` is unknown (what Terraform demands of a new state)."""
    if value is UNKNOWN:
        return False
    if isinstance(value, Mapping):
        return all(is_wholly_known(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(is_wholly_known(v) for v in value)
    return True


def _ext_hook(code: int, data: bytes) -> Unknown:
    # ext 0 is a plain unknown; ext 12 carries refinements (prefix, bounds, nullness).
    # Both mean "unknown" here.
    return UNKNOWN


def _pack_default(obj: Any) -> Any:
    if obj is UNKNOWN:
        return _UNKNOWN_EXT
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} for Terraform")


def unpack(raw: bytes) -> Any:
    """msgpack bytes → Python, unknowns as UNKNOWN."""
    if not raw:
        return None
    try:
        return msgpack.unpackb(raw, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise DecodeError(f"invalid msgpack value from Terraform: {exc}") from exc


def pack(value: Any) -> bytes:
    """Python → msgpack bytes, UNKNOWN as ext 0."""
    packed: bytes = msgpack.packb(value, default=_pack_default, use_bin_type=True)
    return packed


def decode(dv: pb.DynamicValue | None, ctype: CtyType) -> Any:
    """A DynamicValue → Python conformed to `ctype` (None when the message is empty: a null object)."""
    if dv is None:
        return None
    if dv.msgpack:
        value = unpack(dv.msgpack)
    elif dv.json:
        try:
            value = json.loads(dv.json)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON value from Terraform: {exc}") from exc
    else:
        return None
    return conform(value, ctype)


def encode(value: Any, ctype: CtyType) -> pb.DynamicValue:
    """Python → DynamicValue (msgpack, which Terraform always reads), conformed to `ctype`."""
    return pb.DynamicValue(msgpack=pack(conform(value, ctype)))


def conform(value: Any, ctype: CtyType) -> Any:
    """`value` shaped as `ctype`: every object attribute present (missing = null), numbers as int/float,
    collections as lists/dicts. Unknowns and nulls pass through at any level."""
    if value is None or value is UNKNOWN:
        return value
    if isinstance(ctype, str):
        return _conform_primitive(value, ctype)
    kind, inner = ctype[0], ctype[1]
    if kind == "object":
        if not isinstance(value, Mapping):
            raise DecodeError(f"expected an object, got {type(value).__name__}")
        return {name: conform(value.get(name), t) for name, t in inner.items()}
    if kind in ("list", "set"):
        if not isinstance(value, list | tuple):
            raise DecodeError(f"expected a {kind}, got {type(value).__name__}")
        return [conform(v, inner) for v in value]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise DecodeError(f"expected a map, got {type(value).__name__}")
        return {k: conform(v, inner) for k, v in value.items()}
    if kind == "tuple":
        return [conform(v, t) for v, t in zip(value, inner, strict=True)]
    raise DecodeError(f"unsupported cty type {ctype!r}")


def _conform_primitive(value: Any, ctype: str) -> Any:
    if ctype == "number":
        return _number(value)
    if ctype == "string" and isinstance(value, bytes):
        return value.decode()
    return value


def _number(value: Any) -> int | float:
    # Terraform sends numbers too large for a float64 as decimal strings.
    if isinstance(value, bool):
        raise DecodeError("expected a number, got a bool")
    if isinstance(value, int | float):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    try:
        dec = Decimal(str(value))
    except ArithmeticError as exc:
        raise DecodeError(f"expected a number, got {value!r}") from exc
    return int(dec) if dec == dec.to_integral_value() else float(dec)


def attribute_path(path: Sequence[str | int]) -> pb.AttributePath:
    """A field path (`("schedules", 0, "cron")`) as an AttributePath: names for str, list indexes for int."""
    steps = [
        pb.AttributePath.Step(element_key_int=p)
        if isinstance(p, int)
        else pb.AttributePath.Step(attribute_name=p)
        for p in path
    ]
    return pb.AttributePath(steps=steps)


def path_of(ap: pb.AttributePath) -> tuple[str | int, ...]:
    """An AttributePath back to a field path (the inverse of `attribute_path`)."""
    out: list[str | int] = []
    for step in ap.steps:
        which = step.WhichOneof("selector")
        if which == "element_key_int":
            out.append(step.element_key_int)
        elif which == "element_key_string":
            out.append(step.element_key_string)
        elif which == "attribute_name":
            out.append(step.attribute_name)
    return tuple(out)


def diagnostic(d: Diagnostic) -> pb.Diagnostic:
    severity = pb.Diagnostic.ERROR if d.severity is Severity.ERROR else pb.Diagnostic.WARNING
    msg = pb.Diagnostic(severity=severity, summary=d.summary, detail=d.detail)
    if d.path:
        msg.attribute.CopyFrom(attribute_path(d.path))
    return msg


def diagnostics(ds: Sequence[Diagnostic]) -> list[pb.Diagnostic]:
    return [diagnostic(d) for d in ds]
