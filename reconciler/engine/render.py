"""Render a Plan for people and programs: text (Terraform-style, coloured by rich), markdown, JSON.

Owns the layout of a plan (SPEC §3) and the masking of secrets in every output. Decides nothing: every action,
reason, note and warning comes from the Plan. Must never do I/O (it returns strings), read the clock or the
environment.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from reconciler.engine.job_templates import default_base_job_template
from reconciler.engine.plan import Action, AttributeChange, Change, Plan, Reason, plan_to_json
from reconciler.engine.render_noop import NO_CHANGES
from reconciler.errors import WpError
from reconciler.model import SENSITIVE_MASK, Kind, is_secret_path, mask_secrets

DRIFT_TITLE = "Objects changed outside wp since the last apply"

_STYLE = {"+": "green", "~": "yellow", "-": "red", "-/+": "magenta"}
_HEADLINE = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in-place",
    Action.DELETE: "will be destroyed",
    Action.REPLACE: "must be replaced",
    Action.NOOP: "has no changes",
}
_BECAUSE = {
    Reason.ADOPT: "(it was made outside wp; this project will manage it from now on)",
    Reason.NOT_DECLARED: "(because it is no longer declared and prune is on)",
    Reason.DESTROY: "(because destroy was requested)",
}


class _Lines:
    """Text built line by line; each piece carries its style, so colour is optional and changes no byte."""

    def __init__(self) -> None:
        self.text = Text()

    def add(self, *pieces: tuple[str, str]) -> None:
        for content, style in pieces:
            self.text.append(content, style=style or None)
        self.text.append("\n")

    def blank(self) -> None:
        self.text.append("\n")


# ---------------------------------------------------------------------------------------------- values


class _Verbatim(str):
    """Text shown as is, not as a JSON string (e.g. `(the process default)`)."""


def _scalar(value: Any) -> str:
    if isinstance(value, _Verbatim):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _shown_values(change: Change, values: Mapping[str, Any]) -> dict[str, Any]:
    """What a create or delete block lists: unset attributes hidden, a pool's stock template named, not dumped."""
    shown = {k: v for k, v in values.items() if v is not None}
    template = shown.get("base_job_template")
    if change.key.kind is Kind.WORK_POOL and isinstance(template, Mapping):
        try:
            default = default_base_job_template(str(shown.get("type"))).model_dump(mode="json")
        except WpError:
            default = None
        if template == default:
            shown["base_job_template"] = _Verbatim(f"(the {shown.get('type')} default)")
    return shown


def _value_lines(value: Any, indent: int) -> list[str]:
    """A value as JSON-ish text: scalars on one line, mappings and lists as indented blocks."""
    if isinstance(value, Mapping) and value:
        width = max(len(_key(k)) for k in value)
        lines = ["{"]
        for k in sorted(value, key=str):
            inner = _value_lines(value[k], indent + 4)
            lines.append(f"{' ' * (indent + 4)}{_key(k).ljust(width)} = {inner[0]}")
            lines.extend(inner[1:])
        lines.append(f"{' ' * indent}}}")
        return lines
    if isinstance(value, list | tuple) and value:
        inline = _scalar(list(value))
        if all(not isinstance(v, Mapping | list | tuple) for v in value) and len(inline) <= 60:
            return [inline]
        lines = ["["]
        for item in value:
            inner = _value_lines(item, indent + 4)
            lines.append(f"{' ' * (indent + 4)}{inner[0]},")
            lines[-1:] = [lines[-1]] if len(inner) == 1 else [lines[-1][:-1], *inner[1:-1], inner[-1] + ","]
        lines.append(f"{' ' * indent}]")
        return lines
    return [_scalar(value)]


def _key(key: Any) -> str:
    text = str(key)
    return text if text.replace("_", "").replace("-", "").isalnum() else _scalar(text)


def _masked_path(path: str, patterns: Sequence[str]) -> bool:
    return is_secret_path(path.split("."), patterns)


def _lookup(data: Mapping[str, Any] | None, path: str) -> tuple[bool, Any]:
    """Whether `path` exists in `data`, and its value."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


# ---------------------------------------------------------------------------------------------- text


def _emit(out: _Lines, symbol: str, name: str, width: int, lines: Sequence[str], tail: str = "") -> None:
    """One attribute: `<symbol> name = <first line>`, the rest of a multi-line value, `tail` at the end."""
    lines = [*lines[:-1], lines[-1] + tail]
    out.add(("      ", ""), (symbol, _STYLE.get(symbol, "")), (f" {name.ljust(width)} = {lines[0]}", ""))
    for line in lines[1:]:
        out.add((line, ""))


def _attribute_line(out: _Lines, symbol: str, name: str, width: int, value: Any, tail: str = "") -> None:
    _emit(out, symbol, name, width, _value_lines(value, 8), tail)


def _attribute_rows(change: Change, patterns: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """(symbol, dotted path, value lines) for each changed attribute of an update or replace."""
    rows = []
    for attr in change.attributes:
        had, _ = _lookup(change.before, attr.path)
        has, _ = _lookup(change.after, attr.path)
        secret = _masked_path(attr.path, patterns)
        before = _value_lines(SENSITIVE_MASK if secret else mask_secrets(attr.before, patterns), 8)
        after = _value_lines(SENSITIVE_MASK if secret else mask_secrets(attr.after, patterns), 8)
        if had and has:
            symbol, lines = "~", [*before[:-1], f"{before[-1]} -> {after[0]}", *after[1:]]
        elif has:
            symbol, lines = "+", after
        else:
            symbol, lines = "-", before
        if attr.forces_replacement:
            lines[-1] += " # forces replacement"
        rows.append((symbol, attr.path, lines))
    return rows


def _changed_tops(attrs: Sequence[AttributeChange]) -> set[str]:
    return {a.path.split(".", 1)[0] for a in attrs}


def _render_block(
    out: _Lines, change: Change, patterns: Sequence[str], show_unchanged: bool, verb: str
) -> None:
    symbol = change.action.symbol
    kind, name = change.key.kind.value, change.key.name
    out.add((f"  # {change.address} {verb}", "bold"))
    if change.reason is not None and change.reason in _BECAUSE:
        out.add((f"  # {_BECAUSE[change.reason]}", "dim"))
    out.add(("  ", ""), (symbol, _STYLE.get(symbol, "")), (f' {kind} "{name}" {{', ""))
    if change.action in (Action.CREATE, Action.DELETE):
        values = _shown_values(
            change,
            mask_secrets(change.after if change.action is Action.CREATE else change.before, patterns) or {},
        )
        width = max((len(k) for k in values), default=0)
        for key in sorted(values):
            _attribute_line(out, "+" if change.action is Action.CREATE else "-", key, width, values[key])
    else:
        rows = _attribute_rows(change, patterns)
        everything = mask_secrets(change.after or {}, patterns)
        unchanged = sorted(set(everything) - _changed_tops(change.attributes))
        names = [r[1] for r in rows] + (unchanged if show_unchanged else [])
        width = max((len(n) for n in names), default=0)
        for sym, path, lines in rows:
            _emit(out, sym, path, width, lines)
        if show_unchanged:
            for key in unchanged:
                _attribute_line(out, " ", key, width, everything[key])
        elif unchanged:
            word = "attribute" if len(unchanged) == 1 else "attributes"
            out.add((f"        # ({len(unchanged)} unchanged {word} hidden)", "dim"))
    out.add(("    }", ""))
    for note in change.notes:
        out.add((f"    # note: {note.message}", "cyan"))
    out.blank()


def _summary_line(plan: Plan) -> str:
    s = plan.summary
    line = f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy."
    if plan.protection_changes:
        line += f" Protection changes: {len(plan.protection_changes)}."
    return line


def _text(plan: Plan, show_unchanged: bool) -> Text:
    out = _Lines()
    patterns = plan.secret_patterns
    if plan.drift:
        out.add((f"{DRIFT_TITLE}:", "bold"))
        out.blank()
        for change in plan.drift:
            happened = (
                "was deleted outside wp" if change.action is Action.DELETE else "was changed outside wp"
            )
            _render_block(out, change, patterns, show_unchanged, happened)
    if plan.has_changes:
        out.add(("wp will perform the following actions:", ""))
        out.blank()
        for change in plan.actionable:
            _render_block(out, change, patterns, show_unchanged, _HEADLINE[change.action])
        for address in plan.protection_changes:
            on = address in plan.protected
            out.add(
                (
                    f"  # {address} will be {'protected' if on else 'unprotected'} (protect: {str(on).lower()})",
                    "bold",
                )
            )
        if plan.protection_changes:
            out.blank()
        out.add((_summary_line(plan), "bold"))
    else:
        out.add((NO_CHANGES, "green"))
    if plan.warnings:
        out.blank()
        out.add(("Warnings:", "bold yellow"))
        for warning in plan.warnings:
            out.add((f"  - {warning}", "yellow"))
    return out.text


COMPACT_ABOVE = 100  # changes: a longer plan is shown compact unless asked in full
_VERB = {
    Action.CREATE: "to add",
    Action.UPDATE: "to change",
    Action.REPLACE: "to replace",
    Action.DELETE: "to destroy",
}


def render_compact(plan: Plan) -> str:
    """A plan too long to read (thousands of deployments) as a count per kind and action, drift and warnings
    included; the full detail goes to `--out FILE` or `--full`."""
    lines: list[str] = []
    if plan.drift:
        lines += [f"{DRIFT_TITLE}: {len(plan.drift)} object{'s' if len(plan.drift) != 1 else ''}.", ""]
    if not plan.has_changes:
        lines.append(NO_CHANGES)
    else:
        n = len(plan.actionable)
        lines += [f"wp will perform the following actions (compact: {n} changes; --full shows each):", ""]
        counts: dict[tuple[str, Action], int] = {}
        for change in plan.actionable:
            key = (change.key.kind.value, change.action)
            counts[key] = counts.get(key, 0) + 1
        for (kind, action), count in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
            lines.append(f"  {kind}: {count} {_VERB.get(action, action.value)}")
        lines += ["", _summary_line(plan)]
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  - {w}" for w in plan.warnings)]
    return "\n".join(lines)


def render_text(plan: Plan, *, color: bool, show_unchanged: bool = False) -> str:
    """The Terraform-style plan of SPEC §3; ANSI colours only when `color` (otherwise the same bytes)."""
    text = _text(plan, show_unchanged)
    if not color:
        return text.plain
    buffer = io.StringIO()
    console = Console(
        file=buffer, force_terminal=True, color_system="standard", width=10_000, highlight=False
    )
    console.print(text, end="", soft_wrap=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- markdown


def _diff_block(text: str) -> str:
    """Move each line's symbol to column 0 so GitHub colours the ```diff block (`~` and `-/+` become `!`)."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        for symbol, mark in (("-/+ ", "!"), ("~ ", "!"), ("+ ", "+"), ("- ", "-")):
            if stripped.startswith(symbol) and indent > 0:
                line = f"{mark}{' ' * (indent - 1)}{stripped}"
                break
        lines.append(line.replace("```", "`\u200b``"))
    return "```diff\n" + "\n".join(lines) + "\n```"


def _markdown_changes(plan: Plan) -> list[str]:
    lines = ["| | address | action | reason |", "|---|---|---|---|"]
    for change in plan.actionable:
        reason = change.reason.value if change.reason else ""
        lines.append(f"| `{change.action.symbol}` | `{change.address}` | {change.action.value} | {reason} |")
    return lines


def render_markdown(plan: Plan) -> str:
    """A PR comment: the summary line, a table of changes, impact notes, then the full plan in collapsible
    ```diff blocks. Secrets are masked as in the text form."""
    out = [f"### wp plan: project `{plan.project}`", ""]
    out.append(f"**{_summary_line(plan)}**" if plan.has_changes else f"**{NO_CHANGES}**")
    out.append("")
    if plan.has_changes:
        out += [*_markdown_changes(plan), ""]
    notes = [(c.address, n.message) for c in plan.actionable for n in c.notes]
    if notes:
        out += ["#### Impact", "", *(f"- `{address}`: {message}" for address, message in notes), ""]
    if plan.warnings:
        out += ["#### Warnings", "", *(f"- {w}" for w in plan.warnings), ""]
    if plan.drift:
        drift = Plan(plan.project, (), drift=plan.drift, secret_patterns=plan.secret_patterns)
        body = render_text(drift, color=False).split(NO_CHANGES)[0].rstrip()
        out += [
            f"<details><summary>{DRIFT_TITLE} ({len(plan.drift)})</summary>",
            "",
            _diff_block(body),
            "",
            "</details>",
            "",
        ]
    if plan.has_changes:
        body = render_text(
            Plan(plan.project, plan.changes, secret_patterns=plan.secret_patterns), color=False
        )
        out += ["<details><summary>Show plan</summary>", "", _diff_block(body.rstrip()), "", "</details>", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- JSON


def render_json(plan: Plan) -> str:
    """The plan file of SPEC §3 (secrets masked by plan_to_json)."""
    return json.dumps(plan_to_json(plan), indent=2, sort_keys=True)
