"""The `process` executor: a run as a local child process of the worker.

Owns turning a rendered process job configuration (`command`, `env`, `working_dir`, `labels`, `stream_output`,
`name`) into a child process in its own session, reading its stdout, stderr and report pipe without blocking,
and stopping the whole process group (SIGTERM, then SIGKILL after a grace period).

Must never touch the store or decide run states: it only yields events and exit codes to the worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.model import FlowRun
from reconciler.runtime.entry import ENV_REPORT_FD
from reconciler.runtime.executors.base import (
    ENTRY_MODULE,
    Event,
    ExecutorError,
    Job,
    Output,
    StateReport,
    configured_env,
    entry_env,
)

READ_CHUNK = 65536


class ProcessExecutor:
    type = "process"

    def start(self, job: Job) -> ProcessInfrastructure:
        config = job.configuration
        argv = command_of(config.get("command"))
        cwd = working_dir_of(config.get("working_dir"), job.default_working_dir)
        report_read, report_write = os.pipe()
        env = {
            **job.worker_env,
            **configured_env(config),
            **entry_env(job),
            ENV_REPORT_FD: str(report_write),
            "PYTHONUNBUFFERED": "1",  # the flow's prints reach the logs as they happen
            "WP_LABELS": json.dumps(config.get("labels") or {}),
        }
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(report_write,),
                start_new_session=True,  # its own process group, so a stop reaches its children too
            )
        except OSError as exc:
            os.close(report_read)
            raise ExecutorError(f"cannot start {shlex.join(argv)} in {cwd}: {exc.strerror or exc}") from None
        finally:
            os.close(report_write)
        return ProcessInfrastructure(proc, report_read)

    def reattach(self, run: FlowRun, infrastructure_id: str) -> None:
        """A child's pipes die with the worker that started it: nothing to follow again."""
        return None


def command_of(command: Any) -> list[str]:
    """The default command runs the entrypoint with the interpreter that runs the worker."""
    if command is None or command == "" or command == []:
        return [sys.executable, "-m", ENTRY_MODULE]
    if isinstance(command, str):
        return shlex.split(command)
    if isinstance(command, list) and all(isinstance(c, str) for c in command):
        return list(command)
    raise ExecutorError(f"command must be a string or a list of strings, not {command!r}")


def working_dir_of(configured: Any, default: str | None) -> str:
    path = Path(str(configured)).expanduser() if configured else Path(default or os.getcwd())
    if not path.is_dir():
        raise ExecutorError(f"working_dir {str(path)!r} does not exist or is not a directory")
    return str(path)


class ProcessInfrastructure:
    """A running child: non-blocking readers on stdout, stderr and the report pipe."""

    def __init__(self, proc: subprocess.Popen[bytes], report_fd: int) -> None:
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        self._streams: dict[int, str] = {
            proc.stdout.fileno(): "stdout",
            proc.stderr.fileno(): "stderr",
            report_fd: "report",
        }
        self._partial: dict[int, bytes] = dict.fromkeys(self._streams, b"")
        for fd in self._streams:
            os.set_blocking(fd, False)
        self._kill_at: float | None = None

    @property
    def id(self) -> str:
        return str(self._proc.pid)

    def selectables(self) -> Sequence[int]:
        return list(self._streams)

    def read_events(self) -> list[Event]:
        events: list[Event] = []
        for fd in list(self._streams):
            events.extend(self._read(fd))
        return events

    def _read(self, fd: int) -> list[Event]:
        kind = self._streams[fd]
        data = b""
        eof = False
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            data += chunk
        lines = (self._partial[fd] + data).split(b"\n")
        self._partial[fd] = lines.pop()
        if eof:
            if self._partial[fd]:
                lines.append(self._partial[fd])
            self._close(fd)
        return [self._event(kind, line) for line in lines]

    def _close(self, fd: int) -> None:
        kind = self._streams.pop(fd)
        self._partial.pop(fd, None)
        if kind == "report":
            os.close(fd)
        # stdout and stderr are closed with the Popen object

    @staticmethod
    def _event(kind: str, raw: bytes) -> Event:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if kind == "report":
            try:
                data = json.loads(text)
                return StateReport(str(data["state"]), data.get("message"))
            except (ValueError, KeyError, TypeError):
                return Output("stderr", f"wp: unreadable report from the flow-run process: {text}")
        return Output(kind or "stdout", text)

    def exit_code(self) -> int | None:
        code = self._proc.poll()
        if code is None and self._kill_at is not None and time.monotonic() >= self._kill_at:
            self._signal(signal.SIGKILL)
            self._kill_at = None
        if code is None or self._streams:
            # keep reading until every pipe is at its end, so no output or report is lost; a grandchild that
            # keeps a pipe open does not hold the run: the pipes are abandoned once the process is gone
            if code is not None and not self._drain_pending():
                return code
            return None
        return code

    def _drain_pending(self) -> bool:
        """True while some pipe still has buffered data to read."""
        import select

        ready, _, _ = select.select(list(self._streams), [], [], 0)
        return bool(ready)

    def stop(self, grace: float) -> None:
        if self._proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        self._kill_at = time.monotonic() + grace

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def close(self) -> None:
        for fd in list(self._streams):
            if self._streams[fd] == "report":
                os.close(fd)
        self._streams.clear()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
