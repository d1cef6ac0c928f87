"""YAML text -> plain Python values: scalar typing, and building values straight from libyaml's parse events.

Owns how a scalar's text becomes a value (the safe loader's types, timestamps as ISO text, unknown tags as
text), the memoized tag resolver, and `EventBuilder`, which reads a file's events into plain values and
records each value's position without building libyaml's node tree (the tree of a 10,000-deployment file
was a third of a plan's peak memory). Files using anchors, aliases, merge keys, complex keys or several
documents are left to the node reader in `config.load` (`NeedsNodes`).

Must never do I/O: a `!file` tag is handed to the caller's `include` function.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import Node, ScalarNode

from reconciler.config.sources import Path, Positions, Written

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
    except ConstructorError:
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
        self._map = self._mapping if recording else self._bare_mapping
        self._seq = self._sequence if recording else self._bare_sequence

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
        if kind is MappingStartEvent:
            return self._map(at)
        if kind is SequenceStartEvent:
            return self._seq(at)
        raise NeedsNodes  # an alias

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
        """`_mapping` without recording positions."""
        get = self.loader.get_event
        out: dict[str, Any] = {}
        while True:
            key_event = get()
            if type(key_event) is MappingEndEvent:
                return out
            plain = type(key_event) is ScalarEvent and _plain_str(key_event)
            key = key_event.value if plain else self._key(key_event)
            if key in out:
                raise NeedsNodes  # the node reader reports the duplicate
            event = get()
            if type(event) is ScalarEvent and _plain_str(event):  # most values: no path to build
                out[key] = event.value
            else:
                out[key] = self._value(event, (*at, key))

    def _bare_sequence(self, at: Path) -> list[Any]:
        """`_sequence` without recording positions."""
        get = self.loader.get_event
        items: list[Any] = []
        while True:
            event = get()
            if type(event) is SequenceEndEvent:
                return items
            items.append(self._value(event, (*at, len(items))))
