"""Waking idle workers: a worker long-polls its pool here, and the answer comes the moment a run in that pool
may have become claimable (created, rescheduled, or a slot freed by a run reaching a final state).

Owns `WorkSignal`, a per-pool generation counter the run routes bump, and the `GET /work_pools/{pool}/wake`
route. Why: a run triggered now otherwise waits for the worker's next poll (half a second by default); with the
wake it is claimed within a round trip, and workers can keep polling rarely. A wake is only a hint: the worker
still claims through the store, so a missed or spurious wake costs latency, never correctness (a run written
by another server on the same database is found by the next poll). Must never touch the store.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

router = APIRouter(tags=["runs"])

MAX_WAIT_SECONDS = 60.0


class WakeAnswer(BaseModel):
    generation: int


class WorkSignal:
    """Generations per pool, bumped from route threads, awaited by long-polls on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._closed = False

    def generation(self, pool: str) -> int:
        with self._lock:
            return self._generations.get(pool, 0)

    def notify(self, pool: str) -> None:
        """Runs of `pool` may be claimable now: answer its waiters (safe from any thread)."""
        with self._lock:
            self._generations[pool] = self._generations.get(pool, 0) + 1
            waiters = self._waiters.pop(pool, [])
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """The server is stopping: answer every waiter now, so no long-poll holds up the shutdown."""
        with self._lock:
            self._closed = True
            waiters = [w for pool_waiters in self._waiters.values() for w in pool_waiters]
            self._waiters.clear()
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, pool: str, after: int | None, timeout: float) -> int:
        """The pool's generation once it differs from `after` (at once when `after` is None or already
        stale), or after `timeout` seconds, or when the server stops."""
        event = asyncio.Event()
        with self._lock:
            current = self._generations.get(pool, 0)
            if after is None or after != current or self._closed:
                return current
            self._waiters.setdefault(pool, []).append((asyncio.get_running_loop(), event))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            with self._lock:
                pool_waiters = self._waiters.get(pool, [])
                self._waiters[pool] = [w for w in pool_waiters if w[1] is not event]
        return self.generation(pool)


async def work_signal(request: Request) -> WorkSignal:
    # async: a plain `def` dependency costs a trip through FastAPI's thread pool
    signal: WorkSignal = request.app.state.work_signal
    return signal


WorkSignalDep = Annotated[WorkSignal, Depends(work_signal)]


@router.get("/work_pools/{pool}/wake", response_model=WakeAnswer)
async def wait_for_work(
    pool: str,
    request: Request,
    after: int | None = Query(
        None, description="the generation the worker last saw; omitted: answer at once"
    ),
    timeout: float = Query(25.0, ge=0.0, le=MAX_WAIT_SECONDS, description="seconds to wait at most"),
) -> WakeAnswer:
    """Long-poll: answers when runs of `pool` may have become claimable since generation `after`."""
    signal = await work_signal(request)
    return WakeAnswer(generation=await signal.wait(pool, after, timeout))
