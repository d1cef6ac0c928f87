"""The process that holds the apply lock: who it is, and whether it is provably gone.

Owns `HolderProcess` (host name, pid, and the process's start: the boot id and the start time in clock ticks
that Linux gives in /proc, so a pid reused after the holder died, or a reboot, is told apart) and
`gone(holder)`: True only when the holder ran on THIS host and its process no longer exists (or is another
process under the same pid). A holder on another host, or one recorded without a process, is never judged:
only its lease's expiry or `wp force-unlock` frees it. Must never touch the store.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class HolderProcess:
    host: str
    pid: int
    started: str | None = None  # "<boot id>:<start time in clock ticks>", None where /proc is not there

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _started(pid: int) -> str | None:
    """The process's start as "<boot id>:<ticks since boot>", or None if unknown here (no /proc, no such pid)."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: count fields after its last ")"
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


@functools.cache
def this_process() -> HolderProcess:
    return HolderProcess(host=socket.gethostname(), pid=os.getpid(), started=_started(os.getpid()))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def gone(holder: HolderProcess) -> bool:
    """True when `holder` is provably no longer running: on this host, and its pid is free or belongs to a
    process started at another time (the pid was reused, or the machine rebooted)."""
    if holder.host != socket.gethostname() or holder.pid <= 0:
        return False
    if not _exists(holder.pid):
        return True
    if holder.started is None:
        return False
    now = _started(holder.pid)
    return now is not None and now != holder.started
