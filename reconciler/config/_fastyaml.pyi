"""Plain Python values straight from libyaml (the C extension `_fastyaml.c`); see `yaml_values`."""

from collections.abc import Callable
from typing import Any

LIBYAML_VERSION: str

class Declined(Exception):
    """The text needs the Python reader: it uses something this reader does not build, or is malformed."""

def values(
    text: str | bytes,
    implicit_starts: str,
    typed: Callable[[str | None, str, bool], Any],
    key: Callable[[str], object],
    /,
) -> Any:
    """The only document's plain value (None for an empty stream), or Declined."""
