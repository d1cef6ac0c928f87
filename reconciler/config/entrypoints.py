"""Entrypoints read statically: the flow each deployment runs, its registered name and its parameters.

Owns the reading of flow sources with `ast` (user code is never imported or run): file paths
(`flows/etl.py:etl`) and module paths (`pkg.flows:etl`, `pkg.flows.etl`) relative to the project directory, the
name Prefect registers (`@flow(name=...)` as a literal, a module-level string constant or an f-string of
constants, else the function name), and the check of a deployment's `parameters` against the function's
signature (names, required parameters, literal values of simply annotated ones) and the parameter schema a
deployment records (`reconciler.parameters`).

Reads the entrypoint files; must never import them, read the environment or talk to the store.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.config.files import FileProblem, read_text
from reconciler.config.inputs import is_file
from reconciler.config.schema import DeploymentDoc
from reconciler.config.sources import Path as FieldPath
from reconciler.config.sources import Positions
from reconciler.diagnostics import Diagnostic
from reconciler.model import default_flow_name
from reconciler.parameters import ANNOTATION_TYPES, NO_DEFAULT, Param, parameter_schema, wrong_type

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


Parameter = Param  # a parameter of a flow function, read statically


@dataclass(frozen=True)
class FlowFunction:
    """A top-level function of a flow file, as far as it can be read without running it."""

    name: str
    flow_name: str | None = None  # the @flow(name=...) when it can be read statically
    unreadable_name: str | None = None  # the source of a name= that cannot be read statically
    parameters: tuple[Parameter, ...] = ()
    any_keyword: bool = False  # **kwargs: every name is accepted

    @property
    def registered_name(self) -> str:
        return self.flow_name or default_flow_name(self.name)

    @property
    def schema(self) -> dict[str, Any]:
        """The parameter schema a deployment of this function records at apply."""
        return parameter_schema(self.name, self.parameters, self.any_keyword)


@dataclass(frozen=True)
class _Source:
    functions: dict[str, FlowFunction]
    problem: str | None = None


@dataclass
class Checked:
    """The entrypoints of a project: flow names, functions, what was read and what is wrong."""

    flow_names: dict[str, str] = field(default_factory=dict)  # entrypoint -> registered flow name
    functions: dict[str, FlowFunction] = field(default_factory=dict)  # entrypoint -> its function
    files: list[Path] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` (and `NAME: str = ...`, f-strings of earlier constants)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        text = _text(value, found)
        if text is not None:
            found[target] = text
        else:
            found.pop(target, None)  # reassigned to something unknown
    return found


def _text(node: ast.expr, constants: Mapping[str, str]) -> str | None:
    """The string an expression evaluates to, when it is made only of literals and known constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.conversion not in (-1, ord("s")) or value.format_spec is not None:
                    return None
                inner = _text(value.value, constants)
            else:
                inner = _text(value, constants)
            if inner is None:
                return None
            parts.append(inner)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return None if left is None or right is None else left + right
    return None


def _flow_call(func: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Call | None:
    for deco in func.decorator_list:
        if not isinstance(deco, ast.Call):
            continue
        target = deco.func
        called = (
            target.id
            if isinstance(target, ast.Name)
            else target.attr
            if isinstance(target, ast.Attribute)
            else ""
        )
        if called == "flow":
            return deco
    return None


def _parameters(args: ast.arguments) -> tuple[tuple[Parameter, ...], bool]:
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    out: list[Parameter] = []
    for i, arg in enumerate(positional):
        default = args.defaults[i - first_default] if i >= first_default else None
        out.append(Parameter(arg.arg, i < first_default, _annotation(arg.annotation), _literal(default)))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append(Parameter(arg.arg, kw_default is None, _annotation(arg.annotation), _literal(kw_default)))
    return tuple(out), args.kwarg is not None


def _literal(node: ast.expr | None) -> Any:
    """A default written as a JSON-ready literal, else NO_DEFAULT (it is not recorded)."""
    if node is None:
        return NO_DEFAULT
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NO_DEFAULT
    return value if _json_ready(value) else NO_DEFAULT


def _json_ready(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return isinstance(value, list) and all(_json_ready(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ready(v) for k, v in value.items())
    return False


def _annotation(node: ast.expr | None) -> str | None:
    return node.id if isinstance(node, ast.Name) and node.id in ANNOTATION_TYPES else None


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, constants: Mapping[str, str]) -> FlowFunction:
    params, any_keyword = _parameters(node.args)
    call = _flow_call(node)
    name_node = next((kw.value for kw in call.keywords if kw.arg == "name"), None) if call else None
    flow_name = _text(name_node, constants) if name_node is not None else None
    unreadable = ast.unparse(name_node) if name_node is not None and flow_name is None else None
    return FlowFunction(node.name, flow_name, unreadable, params, any_keyword)


def _read_source(path: Path, name: str) -> _Source:
    try:
        tree = ast.parse(read_text(path, name), filename=str(path))
    except SyntaxError as exc:
        return _Source({}, f"cannot parse it: {exc.msg} (line {exc.lineno})")
    except (FileProblem, ValueError, RecursionError, MemoryError) as exc:  # ValueError: a NUL byte
        return _Source({}, f"cannot read it: {exc}")
    constants = _constants(tree)
    funcs = {
        node.name: _function(node, constants)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    return _Source(funcs)


@dataclass(frozen=True)
class _Target:
    """Where an entrypoint points: the file (relative text and resolved path), the function, or why not."""

    shown: str = ""
    path: Path | None = None
    function: str = ""
    problem: tuple[str, str] | None = None  # (summary, detail)
    outside: bool = False  # a module that is not in the project (an installed package): not checked


def _target(root: Path, entrypoint: str) -> _Target:
    file_part, sep, func = entrypoint.rpartition(":")
    if sep and file_part.endswith(".py"):
        if not func.isidentifier():
            return _Target(problem=_malformed(entrypoint))
        return _Target(file_part, (root / file_part).resolve(), func)
    module, func = (file_part, func) if sep else entrypoint.rpartition(".")[::2]
    if not module or not _MODULE.fullmatch(module) or not func.isidentifier():
        return _Target(problem=_malformed(entrypoint))
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if is_file(candidate):
            return _Target(str(candidate.relative_to(root)).replace("\\", "/"), candidate.resolve(), func)
    return _Target(module, None, func, outside=True)


def _malformed(entrypoint: str) -> tuple[str, str]:
    return (
        f"entrypoint '{entrypoint}' is neither path/to/file.py:function nor package.module:function",
        "write the flow file's path relative to the project directory, ':', the function name "
        "(flows/etl.py:etl), or a module path (pkg.flows:etl)",
    )


def check_entrypoints(
    root: Path, deployments: Iterable[tuple[int, DeploymentDoc]], positions: Positions
) -> Checked:
    """Read each deployment's entrypoint once per file; a problem with one is a diagnostic at its line."""
    checked = Checked()
    cache: dict[Path, _Source] = {}
    targets: dict[str, _Target] = {}  # thousands of deployments name the same few entrypoints
    for index, dep in deployments:
        at: FieldPath = ("deployments", index, "entrypoint")
        target = targets.get(dep.entrypoint) or targets.setdefault(
            dep.entrypoint, _target(root, dep.entrypoint)
        )
        if target.problem is not None:
            checked.diagnostics.append(positions.error(*target.problem, at))
            continue
        if target.outside:
            checked.diagnostics.append(
                positions.warning(
                    f"module '{target.shown}' is not in the project directory",
                    f"wp cannot check '{dep.entrypoint}' or read its flow name (it uses "
                    f"'{default_flow_name(target.function)}'); it must be importable where the flow runs. Set "
                    "`flow:` on the deployment to name the flow",
                    at,
                )
            )
            continue
        assert target.path is not None
        if target.path not in cache and not target.path.is_relative_to(root):
            checked.diagnostics.append(
                positions.error(
                    f"entrypoint file '{target.shown}' is outside the project directory",
                    f"the worker runs only flow files inside {root} (symlinks are followed first); "
                    "write the path relative to the project directory",
                    at,
                )
            )
            continue
        if target.path not in cache and not is_file(target.path):
            checked.diagnostics.append(
                positions.error(
                    f"entrypoint file '{target.shown}' does not exist",
                    f"entrypoint paths are relative to the project directory {root}",
                    at,
                )
            )
            continue
        if target.path not in cache:
            cache[target.path] = _read_source(target.path, target.shown)
            checked.files.append(target.path)
        source = cache[target.path]
        if source.problem is not None:
            checked.diagnostics.append(
                positions.error(
                    f"entrypoint file '{target.shown}': {source.problem}", "fix the Python syntax", at
                )
            )
            continue
        function = source.functions.get(target.function)
        if function is None:
            close = difflib.get_close_matches(target.function, list(source.functions), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            defined = ", ".join(sorted(source.functions)) or "none"
            checked.diagnostics.append(
                positions.error(
                    f"'{target.shown}' defines no function '{target.function}'",
                    f"{hint}Functions defined at top level: {defined}",
                    at,
                )
            )
            continue
        checked.flow_names[dep.entrypoint] = function.registered_name
        checked.functions[dep.entrypoint] = function
        if dep.flow_name is not None and dep.flow_name != (dep.flow or function.registered_name):
            checked.diagnostics.append(
                positions.warning(
                    f"'flow_name: {dep.flow_name}' is ignored: Prefect registers the flow as "
                    f"'{dep.flow or function.registered_name}'",
                    f"the flow's name comes from @flow(name=...) in {dep.entrypoint}; remove flow_name",
                    ("deployments", index, "flow_name"),
                    key=True,
                )
            )
        if function.unreadable_name is not None and not dep.flow:
            checked.diagnostics.append(
                positions.warning(
                    f"cannot read the flow name of '{dep.entrypoint}' statically "
                    f"(@flow(name={function.unreadable_name}))",
                    f"wp uses the function name '{function.registered_name}' for now; set `flow:` on the "
                    "deployment to the name the flow registers with, or make name= a string literal or a "
                    "module-level string constant",
                    at,
                )
            )
        checked.diagnostics += parameter_problems(function, dep, index, positions)
    return checked


def read_flow_function(root: Path, entrypoint: str) -> FlowFunction | None:
    """The function an entrypoint names under `root`, read statically; None when it cannot be found there."""
    target = _target(root, entrypoint)
    if target.path is None or not target.path.is_relative_to(root) or not target.path.is_file():
        return None
    return _read_source(target.path, target.shown).functions.get(target.function)


def parameter_problems(
    function: FlowFunction, dep: DeploymentDoc, index: int, positions: Positions
) -> list[Diagnostic]:
    """`parameters` (of the deployment and of each schedule) against the flow function's signature."""
    out: list[Diagnostic] = []
    known = {p.name: p for p in function.parameters}
    names = ", ".join(known) or "none"
    given: list[tuple[Mapping[str, Any], FieldPath]] = [
        (dep.parameters, ("deployments", index, "parameters"))
    ]
    given += [
        (s.parameters, ("deployments", index, "schedules", k, "parameters"))
        for k, s in enumerate(dep.schedules)
    ]
    for values, at in given:
        for name, value in values.items():
            param = known.get(name)
            if param is None:
                if function.any_keyword:
                    continue
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                out.append(
                    positions.error(
                        f"flow function '{function.name}' has no parameter '{name}'",
                        f"{hint}its parameters: {names}",
                        (*at, name),
                        key=True,
                    )
                )
                continue
            if wrong_type(param.annotation, value):
                out.append(
                    positions.error(
                        f"parameter '{name}' of '{function.name}' is annotated {param.annotation}, "
                        f"got {type(value).__name__} {value!r}"[:200],
                        f"give a value of type {param.annotation} here",
                        (*at, name),
                    )
                )
    missing = [p.name for p in function.parameters if p.required and p.name not in dep.parameters]
    for k, schedule in enumerate(dep.schedules):
        lacking = [m for m in missing if m not in schedule.parameters]
        if lacking:
            out.append(
                positions.error(
                    f"runs of this schedule lack the required parameter(s) {', '.join(lacking)} "
                    f"of '{function.name}'",
                    f"set them under the deployment's parameters or this schedule's; its parameters: {names}",
                    ("deployments", index, "schedules", k),
                )
            )
    if missing and not dep.schedules:
        out.append(
            positions.warning(
                f"'{function.name}' requires parameter(s) {', '.join(missing)}, which the deployment does not set",
                "every run must give them (wp deployment run --param NAME=VALUE), or set them under parameters",
                ("deployments", index, "name"),
            )
        )
    return out
