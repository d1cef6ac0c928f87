"""YAML text -> plain Python values: scalar typing, and building values straight from libyaml's parse events.

Owns how a scalar's text becomes a value (the safe loader's types, timestamps as ISO text), which tags a
config may use (`known_tag`: YAML's standard ones and wp's `!file`), the memoized tag resolver, and `EventBuilder`, which reads a file's events into plain values and
records each value's position without building libyaml's node tree (the tree of a 10,000-deployment file
was a third of a plan's peak memory). Files using anchors, aliases, merge keys, complex keys or several
documents are left to the node reader in `config.load` (`NeedsNodes`), after `check_bounds` has refused
what would expand past MAX_ALIAS_VALUES or nest deeper than MAX_DEPTH (an alias bomb, a self-referencing
alias): a config comes from a pull request and is read before anyone reviews it.

Must never do I/O: a `!file` tag is handed to the caller's `include` function.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import Node, ScalarNode

from reconciler.config.sources import Path, Positions, Written

# Bounds on what a YAML file may expand to. Aliases are resolved by walking the anchored value again for each
# alias, so ten lines of nested aliases ("billion laughs") build billions of values; a value inside itself
# never ends. A real config nests a dozen levels and repeats a few anchored blocks per deployment.
MAX_DEPTH = 100  # nested mappings/lists, aliases expanded (Python's own recursion limit is 1,000)
MAX_ALIAS_VALUES = 100_000  # values aliases may add to one file ...
ALIAS_VALUES_PER_WRITTEN = 2  # ... plus this many for each value written in it, so large files scale
BOUNDS = (
    f"aliases may add at most {MAX_ALIAS_VALUES:,} values to a file, plus {ALIAS_VALUES_PER_WRITTEN} for each "
    f"value written in it, and values may nest at most {MAX_DEPTH} deep"
)

MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
# Scalar text -> its implicit tag. Keys and enum-like values repeat thousands of times in a large project and
# the resolver tries regular expressions on each; the tag depends only on the text, so a bounded memo is exact.
_RESOLVED: dict[tuple[str, Any], str] = {}
_RESOLVED_MAX = 20_000
_RESOLVED_TEXT_MAX = 64


class Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser and composer with a memoized resolver; values are built by `scalar_value`,
    `EventBuilder` and `config.load`."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is not ScalarNode or len(value) > _RESOLVED_TEXT_MAX:
            return str(super().resolve(kind, value, implicit))
        # Quoted text, and plain text whose first character starts no implicit type, is a string: this is
        # what the base resolver concludes too (without path resolvers), after building lists and a tuple.
        if _SHORTCUT and (not implicit[0] or (value and value[0] not in _IMPLICIT_STARTS)):
            return STR_TAG
        memo = (value, implicit)
        tag = _RESOLVED.get(memo)
        if tag is None:
            tag = str(super().resolve(kind, value, implicit))
            if len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[memo] = tag
        return tag


# Characters an implicitly typed plain scalar (int, bool, null, timestamp, ...) can start with; a wildcard
# resolver (key None) or a path resolver would make every scalar a candidate, so there is no shortcut then.
_SHORTCUT = None not in Loader.yaml_implicit_resolvers and not Loader.yaml_path_resolvers
_IMPLICIT_STARTS = frozenset(k for k in Loader.yaml_implicit_resolvers if k)
_CONSTRUCT = SafeConstructor()
_INT_DIGITS_MAX = 4000  # below sys.get_int_max_str_digits()'s default 4,300


YAML_PREFIX = "tag:yaml.org,2002:"
# YAML's standard tags that the safe loader builds (`!!str`, `!!int`, ...), and wp's own `!file`
STANDARD_TAGS = frozenset(t for t in SafeConstructor.yaml_constructors if t and t.startswith(YAML_PREFIX))
WP_TAGS = frozenset({"!file"})
SUPPORTED_TAGS = ", ".join(["!file", *sorted("!!" + t.removeprefix(YAML_PREFIX) for t in STANDARD_TAGS)])


def known_tag(tag: str | None) -> bool:
    """Whether a config may write `tag` (None and "!" are the untagged and the non-specific tag)."""
    return tag is None or tag == "!" or tag in STANDARD_TAGS or tag in WP_TAGS


def unknown_tag_problem(tag: str) -> tuple[str, str]:
    """The summary and detail of the diagnostic for a tag no part of wp reads: its text is not kept
    silently (it may be a tag of another tool whose meaning wp would lose)."""
    shown = "!!" + tag.removeprefix(YAML_PREFIX) if tag.startswith(YAML_PREFIX) else tag
    return (
        f"unknown YAML tag {shown}",
        f"wp reads these tags: {SUPPORTED_TAGS}; remove the tag or use one of them",
    )


def scalar_value(node: Node) -> Any:
    """A scalar node's value; timestamps as ISO text so every value is JSON; unknown tags keep their text."""
    if not isinstance(node, ScalarNode):
        return None
    return _typed(node.tag, node.value, node)


def _typed(tag: str, text: str, node: ScalarNode | None) -> Any:
    """The value of scalar `text` with its resolved `tag` (`node` is built from them when None)."""
    # Fast paths for the common tags, giving what SafeConstructor gives; anything unusual goes to it.
    if tag == STR_TAG:
        return text
    if tag == _INT_TAG and len(text) > _INT_DIGITS_MAX:
        # Python refuses to convert so many digits (ValueError); as text, validation says what is wrong
        return text
    if tag == _INT_TAG and text.isascii() and text.isdigit() and (text[0] != "0" or text == "0"):
        return int(text)
    if tag == _NULL_TAG:
        return None
    if tag == _BOOL_TAG and text.lower() in SafeConstructor.bool_values:
        return SafeConstructor.bool_values[text.lower()]
    if node is None:
        node = ScalarNode(tag, text)
    try:
        value = _CONSTRUCT.construct_object(node)
    except (ConstructorError, ValueError):
        return str(node.value)
    finally:
        # The constructor memoizes every node it builds; left there, each load would keep its nodes alive.
        _CONSTRUCT.constructed_objects.pop(node, None)
        _CONSTRUCT.recursive_objects.pop(node, None)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _plain_str(event: ScalarEvent) -> bool:
    """Whether an untagged scalar is certainly a string, by the rule `Loader.resolve` shortcuts with; most
    keys and values of a large project are, and resolving each through the loader was a tenth of reading it."""
    if event.tag is not None or not _SHORTCUT:
        return False
    value = event.value
    return not event.implicit[0] or bool(value and value[0] not in _IMPLICIT_STARTS)


class Refused(Exception):
    """A YAML text over a bound: `summary` and `detail` of the diagnostic, where (1-based) and the field."""

    def __init__(self, summary: str, detail: str, line: int, column: int, path: Path) -> None:
        super().__init__(summary)
        self.summary, self.detail, self.line, self.column, self.path = summary, detail, line, column, path


class _Frame:
    """An open mapping or list while `check_bounds` reads events."""

    __slots__ = ("anchor", "below", "children", "is_map", "key", "size")

    def __init__(self, anchor: str | None, is_map: bool) -> None:
        self.anchor = anchor
        self.is_map = is_map
        self.size = 1  # values in it, aliases expanded, itself included
        self.below = 1  # levels of mappings/lists, itself included
        self.children = 0  # events read in it (a mapping's keys and values alternate)
        self.key: Any = None  # a mapping's last key, for the field path of a diagnostic

    def add(self, event: Any) -> None:
        if self.is_map and self.children % 2 == 0:
            self.key = event.value if type(event) is ScalarEvent else "?"
        self.children += 1


_VALUE_EVENTS = frozenset({ScalarEvent, AliasEvent, MappingStartEvent, SequenceStartEvent})


def _field(stack: list[_Frame]) -> Path:
    path = tuple(f.key if f.is_map else f.children - 1 for f in stack[:_FIELD_SHOWN])
    return (*path, "...") if len(stack) > _FIELD_SHOWN else path


_FIELD_SHOWN = 12


def check_bounds(text: str) -> None:
    """Refused when `text`, aliases expanded, would pass MAX_ALIAS_VALUES or MAX_DEPTH, or holds an alias
    inside the value it names; raised at that alias (or that level), before anything is built.

    Reads only libyaml's events; a malformed text raises the parser's YAMLError."""
    loader = Loader(text)
    try:
        _scan(loader.get_event)
    except yaml.MarkedYAMLError as exc:
        # libyaml's scanner reads flow collections ahead of the events and stops at its own depth of 1,000
        if "nesting depth" not in str(exc.problem) or exc.problem_mark is None:
            raise
        mark = exc.problem_mark
        raise Refused(
            f"values nest more than {MAX_DEPTH} deep",
            f"{BOUNDS}; flatten this structure",
            mark.line + 1,
            1,
            (),
        ) from None
    finally:
        loader.dispose()


def _scan(get: Callable[[], Any]) -> None:
    stack: list[_Frame] = []
    closed: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) of its value
    written = added = 0
    while True:
        event = get()
        kind = type(event)
        if kind is StreamEndEvent:
            return
        if kind is DocumentStartEvent:
            closed.clear()  # anchors belong to their document
            continue
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            frame = stack.pop()
            if frame.anchor is not None:
                closed[frame.anchor] = (frame.size, frame.below)
            if stack:
                stack[-1].size += frame.size
                stack[-1].below = max(stack[-1].below, frame.below + 1)
            continue
        if kind not in _VALUE_EVENTS:
            continue  # stream start, document end
        written += 1
        if stack:
            stack[-1].add(event)
        mark = event.start_mark
        if kind is ScalarEvent:
            if stack:
                stack[-1].size += 1
            if event.anchor is not None:
                closed[event.anchor] = (1, 0)
        elif kind is AliasEvent:
            name = event.anchor
            if any(f.anchor == name for f in stack):
                raise Refused(
                    f"alias *{name} is inside the value it names",
                    f"a value cannot contain itself: move *{name} out of the value anchored &{name}",
                    mark.line + 1,
                    mark.column + 1,
                    _field(stack),
                )
            size, levels = closed.get(name, (1, 0))  # an undefined alias: the composer says so
            if len(stack) + levels > MAX_DEPTH:
                raise Refused(
                    f"alias *{name} nests values more than {MAX_DEPTH} deep",
                    f"{BOUNDS}; refer to a shallower value or write this one out",
                    mark.line + 1,
                    mark.column + 1,
                    _field(stack),
                )
            added += size
            if added > MAX_ALIAS_VALUES + ALIAS_VALUES_PER_WRITTEN * written:
                raise Refused(
                    f"alias *{name} expands the file past {MAX_ALIAS_VALUES:,} values added by aliases",
                    f"{BOUNDS}; nested aliases of aliases multiply (an alias bomb): write the values out "
                    "or use fewer levels of aliases",
                    mark.line + 1,
                    mark.column + 1,
                    _field(stack),
                )
            if stack:
                stack[-1].size += size
                stack[-1].below = max(stack[-1].below, levels + 1)
        else:  # a mapping or list opens
            if len(stack) >= MAX_DEPTH:
                raise Refused(
                    f"values nest more than {MAX_DEPTH} deep",
                    f"{BOUNDS}; flatten this structure",
                    mark.line + 1,
                    mark.column + 1,
                    _field(stack),
                )
            stack.append(_Frame(event.anchor, kind is MappingStartEvent))


class NeedsNodes(Exception):
    """The text uses something only the node reader resolves (aliases, merge keys, complex or repeated keys,
    several documents) or is malformed; the caller reads it with nodes, which also words any error."""


class EventBuilder:
    """Plain values of one YAML text, and the position of every value and key under its path.

    `include(target, path)` returns the value of a `!file target` scalar at `path`. With `positions` None no
    position is recorded: a project without problems needs none, and building one tuple per node was a fifth
    of a large project's load."""

    def __init__(
        self, text: str, file: str, positions: Positions | None, include: Callable[[str, Path], Any]
    ) -> None:
        self.loader = Loader(text)
        self.text = text
        self.file = file
        self.positions = positions or Positions()
        self.include = include
        recording = positions is not None
        self.bare = not recording
        self.depth = 0  # mappings/lists open; past MAX_DEPTH the node reader's bounds check words it
        self._map = self._mapping if recording else self._bare_mapping
        self._seq = self._sequence if recording else self._bare_sequence
        self._plain_keys: dict[str, str] = {}
        self._plain_values: dict[str, Any] = {}

    def build(self) -> Any:
        """The document's value (None for an empty text); NeedsNodes when the node reader must do it."""
        try:
            return self._document()
        except yaml.YAMLError:
            raise NeedsNodes from None
        finally:
            self.loader.dispose()

    def _document(self) -> Any:
        get = self.loader.get_event
        get()  # stream start
        event = get()
        if type(event) is StreamEndEvent:
            return None
        value = self._value(get(), ())
        get()  # document end
        if type(get()) is not StreamEndEvent:
            raise NeedsNodes
        return value

    def _tag(self, event: ScalarEvent) -> str:
        tag = event.tag
        if tag is None or tag == "!":
            return str(self.loader.resolve(ScalarNode, event.value, event.implicit))
        if not known_tag(tag):
            raise NeedsNodes  # the node reader words the error at the tag's position
        return str(tag)

    def _value(self, event: Any, at: Path) -> Any:
        kind = type(event)
        if kind is ScalarEvent:
            if _plain_str(event):
                return event.value
            tag = self._tag(event)
            if tag == "!file":
                return self.include(str(event.value), at)
            return _typed(tag, event.value, None)
        if kind is not MappingStartEvent and kind is not SequenceStartEvent:
            raise NeedsNodes  # an alias
        if not known_tag(event.tag):
            raise NeedsNodes
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise NeedsNodes
        value = self._map(at) if kind is MappingStartEvent else self._seq(at)
        self.depth -= 1
        return value

    def _key(self, event: Any) -> str:
        """A mapping key's text; NeedsNodes for what only the node reader resolves."""
        if type(event) is not ScalarEvent:
            raise NeedsNodes  # a complex key or an alias
        if _plain_str(event):
            return str(event.value)
        tag = self._tag(event)
        if tag == MERGE_TAG:
            raise NeedsNodes
        return str(event.value) if tag == STR_TAG else str(_typed(tag, event.value, None))

    def _mapping(self, at: Path) -> dict[str, Any]:
        get, file = self.loader.get_event, self.file
        keys, values = self.positions.keys, self.positions.values
        out: dict[str, Any] = {}
        while True:
            key_event = get()
            if type(key_event) is MappingEndEvent:
                return out
            plain = type(key_event) is ScalarEvent and _plain_str(key_event)
            key = key_event.value if plain else self._key(key_event)
            if key in out:
                raise NeedsNodes  # the node reader reports the duplicate
            child = (*at, key)
            event: Any = get()
            km: Any = key_event.start_mark
            vm: Any = event.start_mark
            keys[child] = tuple.__new__(Written, (file, km.line + 1, km.column + 1, child))
            values[child] = tuple.__new__(Written, (file, vm.line + 1, vm.column + 1, child))
            out[key] = self._value(event, child)

    def _sequence(self, at: Path) -> list[Any]:
        get, file, values = self.loader.get_event, self.file, self.positions.values
        items: list[Any] = []
        while True:
            event = get()
            if type(event) is SequenceEndEvent:
                return items
            child = (*at, len(items))
            mark = event.start_mark
            values[child] = tuple.__new__(Written, (file, mark.line + 1, mark.column + 1, child))
            items.append(self._value(event, child))

    def _bare_mapping(self, at: Path) -> dict[str, Any]:
        """`_mapping` without recording positions. Untagged scalars are read inline (the `_plain_str` rule),
        and a plain one that may be typed (`10`, `no`, `name`) is resolved once per text (`_plain_value`):
        most of a large file's keys and values are such scalars."""
        get = self.loader.get_event
        starts = _IMPLICIT_STARTS
        out: dict[str, Any] = {}
        while True:
            key_event = get()
            if type(key_event) is MappingEndEvent:
                return out
            if type(key_event) is ScalarEvent and key_event.tag is None and _SHORTCUT:
                key = key_event.value
                if key_event.implicit[0] and (not key or key[0] in starts):
                    key = self._plain_key(key_event)
            else:
                key = self._key(key_event)
            if key in out:
                raise NeedsNodes  # the node reader reports the duplicate
            event = get()
            if type(event) is ScalarEvent and event.tag is None and _SHORTCUT:
                text = event.value
                if event.implicit[0] and (not text or text[0] in starts):
                    out[key] = self._plain_value(event)
                else:
                    out[key] = text
            else:
                out[key] = self._value(event, (*at, key))

    def _bare_sequence(self, at: Path) -> list[Any]:
        """`_sequence` without recording positions (scalars read as in `_bare_mapping`)."""
        get = self.loader.get_event
        starts = _IMPLICIT_STARTS
        items: list[Any] = []
        while True:
            event = get()
            if type(event) is SequenceEndEvent:
                return items
            if type(event) is ScalarEvent and event.tag is None and _SHORTCUT:
                text = event.value
                if event.implicit[0] and (not text or text[0] in starts):
                    items.append(self._plain_value(event))
                else:
                    items.append(text)
            else:
                items.append(self._value(event, (*at, len(items))))

    def _plain_key(self, event: ScalarEvent) -> str:
        """`_key` of a plain, untagged scalar: a function of its text alone, so computed once per text."""
        key = self._plain_keys.get(event.value)
        if key is None:
            key = self._key(event)  # NeedsNodes for a merge key: not remembered
            if len(self._plain_keys) < _PLAIN_MEMO_MAX:
                self._plain_keys[event.value] = key
        return key

    def _plain_value(self, event: ScalarEvent) -> Any:
        """`_value` of a plain, untagged scalar: a function of its text alone (an int, float, bool, None or
        text: nothing mutable), so computed once per text."""
        value = self._plain_values.get(event.value, _UNSEEN)
        if value is _UNSEEN:
            value = _typed(self._tag(event), event.value, None)
            if len(self._plain_values) < _PLAIN_MEMO_MAX:
                self._plain_values[event.value] = value
        return value


_UNSEEN = object()
_PLAIN_MEMO_MAX = 100_000  # distinct texts remembered per file
