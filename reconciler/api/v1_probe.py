"""FastAPI's "is this a pydantic.v1 model?" check, answered without importing pydantic.v1 when it cannot be one.

Why: FastAPI refuses pydantic.v1 models, and to find them it imports `pydantic.v1` (23 modules, ~1.5 MB
resident, tens of milliseconds) the first time it builds a route, then asks `issubclass(x, v1.BaseModel)` for
every parameter and response model. wp has no pydantic.v1 model, and nothing can be an instance or a subclass of
`pydantic.v1.BaseModel` while `pydantic.v1` is not imported: so until something imports it, the answer is "no"
without the import, and once something has, FastAPI's own check runs unchanged. Every answer stays the same;
only the import is saved, on every `wp server start`.

Installed by importing this module (reconciler.api.app imports it before any router is built). A FastAPI
without these checks (older or newer than the one this was written against) is left as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

V1 = "pydantic.v1"


def _unless_v1_unloaded(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def probe(value: Any) -> bool:
        return V1 in sys.modules and check(value)

    probe.__wrapped__ = check  # type: ignore[attr-defined]  # functools' convention: the original is reachable
    return probe


def install() -> None:
    """Wrap FastAPI's two checks (once; a second call changes nothing)."""
    try:
        import fastapi.encoders as encoders
        from fastapi._compat import shared
    except ImportError:
        return
    # `shared.annotation_is_pydantic_v1` calls `is_pydantic_v1_model_class` through its module's globals;
    # `fastapi.encoders` holds its own reference to `is_pydantic_v1_model_instance`.
    for module, name in (
        (shared, "is_pydantic_v1_model_class"),
        (shared, "is_pydantic_v1_model_instance"),
        (encoders, "is_pydantic_v1_model_instance"),
    ):
        check = getattr(module, name, None)
        if callable(check) and not hasattr(check, "__wrapped__"):
            setattr(module, name, _unless_v1_unloaded(check))


install()
