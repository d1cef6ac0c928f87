"""A leaner Prefect in a flow-run process: work Prefect does at import and on a flow's first call that a run under
wp never uses, deferred or skipped.

Owns two measured savings of a cold run (a fresh interpreter, as in every container run), each keeping Prefect's
behaviour for every run wp can serve:
- Prefect's notification, webhook and system block modules are loaded on their first attribute use:
  `prefect.main` imports them only so their block types register for loading saved blocks from a Prefect server,
  which a run under wp has not got. Building their pydantic models is about a quarter of `import prefect`'s CPU
  (Prefect 3.9, `python -X importtime`). Any attribute use (`from prefect.blocks.system import Secret`, a block
  class in an isinstance check) runs the module as usual. (The standard library's `LazyLoader` would not do:
  the import system reads `__spec__` of a module imported twice, which makes it load at once.)
- A flow's parameters that are plain JSON already (str, int, float, bool, None, lists and dicts of them) are
  recorded as they are: Prefect's `Flow.serialize_parameters` would import FastAPI for its `jsonable_encoder`
  to turn them into the same values; anything else still goes through it.

Stdlib-only at import time (shipped with the container runner); `install` runs before the flow's module imports
Prefect, `lean_flow_calls` after. `WP_PREFECT_LEAN=0` in the job's env turns both off in a cold run (an escape hatch, and the
bench's comparison).
"""

from __future__ import annotations

import _thread
import importlib.machinery
import os
import sys
from types import ModuleType

# Imported by every flow-run process (entry): `importlib.abc` pulls importlib.resources, tempfile and typing
# (a megabyte and a half of each child), so the finder and loader below are duck-typed, as the import system
# allows (the loader is a Loader subclass to the type checker only), and names for the type checker are
# imported only for it (mypy reads any `TYPE_CHECKING` as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.abc
    from collections.abc import Sequence
    from typing import Any

    _Loader = importlib.abc.Loader
else:
    _Loader = object

LAZY_MODULES = frozenset({"prefect.blocks.notifications", "prefect.blocks.webhook", "prefect.blocks.system"})
_PATCHED = "__wp_lean__"
ENV_LEAN = "WP_PREFECT_LEAN"
_LOCK = _thread.RLock()


class _Deferred(ModuleType):
    """A module whose code runs when one of its attributes is first asked for."""

    def __getattr__(self, name: str) -> Any:  # only for attributes the module has not got (yet)
        with _LOCK:  # one thread runs the code; another asking meanwhile waits for it
            loader = self.__dict__.pop("__wp_deferred__", None)
            if loader is not None:
                self.__class__ = ModuleType  # type: ignore[assignment]
                loader.exec_module(self)
        if type(self) is _Deferred:
            raise AttributeError(name)
        return getattr(self, name)  # an ordinary module now


class _DeferredLoader(_Loader):
    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__wp_deferred__"] = self.real
        module.__class__ = _Deferred


class _LazyBlocks:  # an importlib.abc.MetaPathFinder
    """Finds the block modules where Python would, and defers running their code."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _DeferredLoader(spec.loader)
        return spec


def install() -> None:
    """Defer the block modules' loading in this process (idempotent; a no-op once Prefect imported them)."""
    if os.environ.get(ENV_LEAN) == "0" or any(isinstance(finder, _LazyBlocks) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _LazyBlocks())


def _plain_json(value: Any, depth: int = 0) -> bool:
    if value is None or type(value) in (str, int, float, bool):
        return True
    if depth > 20:
        return False
    if type(value) is list:
        return all(_plain_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def lean_flow_calls() -> None:
    """Record plain-JSON parameters without FastAPI's encoder (same values; others as Prefect does)."""
    if os.environ.get(ENV_LEAN) == "0":
        return
    from prefect.flows import Flow

    original = Flow.serialize_parameters
    if getattr(original, _PATCHED, False):
        return

    def serialize_parameters(self: Any, parameters: dict[str, Any]) -> dict[str, Any]:
        if self.ismethod or self.isclassmethod or not _plain_json(parameters):
            serialized: dict[str, Any] = original(self, parameters)
            return serialized
        return dict(parameters)

    setattr(serialize_parameters, _PATCHED, True)
    serialize_parameters.__doc__ = original.__doc__
    setattr(Flow, "serialize_parameters", serialize_parameters)  # noqa: B010 - typed or not, as Prefect is
