"""What a route receives from the application: the Store it serves and the time of the request.

Owns the FastAPI dependencies shared by every router. Must never hold state of its own: the store lives on
`app.state`, set once by `create_app`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import Depends, Request

from reconciler.store.base import Store


async def get_store(request: Request) -> Store:
    # async, though it does no I/O: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    # per request (and per dependency) for an attribute read
    return cast(Store, request.app.state.store)


StoreDep = Annotated[Store, Depends(get_store)]


def now_or_clock(now: datetime | None) -> datetime:
    """The caller's `now` (clients pass it so tests and workers agree on time), else the server's clock,
    in UTC. A naive time is taken as UTC rather than refused: the protocol speaks UTC throughout."""
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
