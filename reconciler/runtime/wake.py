"""A worker's ear for its server's wake-ups: a thread long-polls the pool's wake route and makes a pipe readable
when runs may have become claimable, so the worker's select loop claims at once instead of at its next poll.

Owns that thread and its pipe. Only a store that can wait (`HttpStore.wait_for_work`) has one; a worker on the
database directly keeps polling. A wake is a hint: errors only slow the listener down, never the worker.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Protocol

from reconciler.errors import NotFoundError, WpError

LONG_POLL_SECONDS = 20.0
RETRY_SECONDS = 2.0


class WaitingStore(Protocol):
    def wait_for_work(self, work_pool: str, after: int | None, timeout: float) -> int: ...


class WakeListener:
    """Long-polls `store` for `pool` in a daemon thread; `fd` becomes readable on every wake."""

    def __init__(self, store: WaitingStore, pool: str) -> None:
        self._store = store
        self._pool = pool
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="wp-wake", daemon=True)

    @property
    def fd(self) -> int:
        return self._read

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Consume the pending wake-ups (many wakes before one claim are one claim)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def stop(self) -> None:
        """Stop listening; a long-poll in flight ends with its timeout, in the daemon thread."""
        self._stopped.set()
        os.close(self._read)

    def _listen(self) -> None:
        generation: int | None = None
        while not self._stopped.is_set():
            try:
                seen = self._store.wait_for_work(self._pool, generation, LONG_POLL_SECONDS)
            except NotFoundError:
                return  # a server without wake-ups: the worker's polls are all there is
            except WpError:
                self._stopped.wait(RETRY_SECONDS)  # server restarting: the worker's own retries report it
                generation = None
                continue
            if generation is not None and seen != generation:
                self._signal()
            generation = seen
        os.close(self._write)

    def _signal(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full pipe: a wake is already pending
            os.write(self._write, b"!")
        time.sleep(0)  # let the worker's loop run before the next long-poll
