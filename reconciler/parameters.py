"""A flow's parameters as recorded at apply, and the check of a run's parameters against them.

Owns the deployment's `parameter_schema` (a JSON Schema in the manner of Prefect's `parameter_openapi_schema`:
`properties` in signature order with the JSON `type` of a simply annotated parameter and a literal `default`,
`required` (defaults of parameters whose names look secret are not recorded), `additionalProperties` when the function takes `**kwargs`, and `x-wp-function`, the function's
name for messages), and the one check that `wp deployment run`, the API's run creation and the web UI's trigger
share: unknown names, missing required parameters, literals of the wrong simple type.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import is_secret_key

# annotation -> its JSON Schema type, and the Python types a literal value of it may have (int is a float;
# bool is not an int here)
ANNOTATION_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "str": ("string", (str,)),
    "int": ("integer", (int,)),
    "float": ("number", (int, float)),
    "bool": ("boolean", (bool,)),
    "dict": ("object", (dict,)),
    "list": ("array", (list,)),
}
_BY_JSON_TYPE = {json_type: name for name, (json_type, _) in ANNOTATION_TYPES.items()}
NO_DEFAULT = object()  # a parameter without a default, or whose default is not a literal


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    annotation: str | None  # a key of ANNOTATION_TYPES, else None (not checked)
    default: Any = NO_DEFAULT


def parameter_schema(function: str, params: Sequence[Param], any_keyword: bool) -> dict[str, Any]:
    """The schema recorded for a flow function named `function` with these parameters."""
    properties: dict[str, Any] = {}
    for position, param in enumerate(params):
        prop: dict[str, Any] = {"title": param.name, "position": position}
        if param.annotation in ANNOTATION_TYPES:
            prop["type"] = ANNOTATION_TYPES[param.annotation][0]
        if param.default is not NO_DEFAULT and not is_secret_key(param.name):
            prop["default"] = (
                param.default
            )  # a secret-looking one is left out: the schema is shown everywhere
        properties[param.name] = prop
    return {
        "title": "Parameters",
        "type": "object",
        "properties": properties,
        "required": [p.name for p in params if p.required],
        "additionalProperties": any_keyword,
        "x-wp-function": function,
    }


def wrong_type(annotation: str | None, value: Any) -> bool:
    """Whether the literal `value` cannot be a value of a parameter annotated `annotation`."""
    allowed = ANNOTATION_TYPES.get(annotation or "")
    if allowed is None or value is None or (isinstance(value, str) and "{{" in value):
        return False  # not checked; a placeholder is reported on its own
    return not isinstance(value, allowed[1]) or (annotation in ("int", "float") and isinstance(value, bool))


def run_parameter_problems(schema: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """What is wrong with the parameters a run would call the schema's function with, one sentence each,
    naming the function's parameters."""
    properties = schema.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    signature = f"{schema.get('x-wp-function') or 'the flow'}({', '.join(props)})"
    out: list[str] = []
    for name, value in values.items():
        prop = props.get(name)
        if prop is None:
            if not schema.get("additionalProperties"):
                out.append(f"{signature} has no parameter '{name}'")
            continue
        annotation = _BY_JSON_TYPE.get(str(prop.get("type"))) if isinstance(prop, Mapping) else None
        if wrong_type(annotation, value):
            out.append(f"parameter '{name}' of {signature} is annotated {annotation}, got {value!r}"[:200])
    missing = [str(n) for n in schema.get("required") or () if n not in values]
    if missing:
        out.append(f"{signature} requires {', '.join(missing)}")
    return out


def check_run_parameters(schema: Mapping[str, Any] | None, values: Mapping[str, Any]) -> list[str]:
    """`run_parameter_problems` for a deployment's recorded schema; nothing when none was recorded (a deployment
    made by hand or by Terraform: its code was never read)."""
    return [] if schema is None else run_parameter_problems(schema, values)
