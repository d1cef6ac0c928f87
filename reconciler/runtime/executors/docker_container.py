"""One run's container, followed on its own thread so no engine call ever stalls the worker's loop.

Owns the engine calls of one container's life: the image by its pull policy, create (a taken name gets a
suffix), network connections, start, its multiplexed log stream with timestamps (parsed by
`container.StreamParser` into output lines and state reports), the wait for its end, what that end means
(OOMKilled, a signal, 125/126/127 explained), stop (Docker's stop: SIGTERM, SIGKILL after the grace period)
and removal when `auto_remove` is set. The worker sees only the `Infrastructure` protocol: events collected by
the thread, a pipe that wakes the worker's selector when there are some, and the exit code.

`auto_remove` is done here, after the end was read, rather than by the engine (`--rm`): the engine would
delete the container, and with it the OOMKilled flag and the output a re-attaching worker needs.

Must never touch the store.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import struct
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reconciler.runtime.executors.base import Event, Output, StateReport
from reconciler.runtime.executors.container import StreamParser

if TYPE_CHECKING:
    from reconciler.runtime.executors.docker import ContainerSpec
    from reconciler.runtime.executors.docker_standby import Standby

RUN_ID_LABEL = "io.wp.flow-run-id"
AUTO_REMOVE_LABEL = "io.wp.auto-remove"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
LAUNCH_FAILED = 125  # the exit code `docker run` gives when the engine could not run the container
EXPLAINED_CODES = {
    125: "the engine could not run the container",
    126: "the command cannot be executed in the image (not executable, or a permission is missing)",
    127: "the command was not found in the image (is python3 on its PATH?)",
}


class DockerContainer:
    """A container as the worker sees it. `id` is the wanted name until the engine created it, then its id."""

    def __init__(self, api: Any, ident: str, *, auto_remove: bool) -> None:
        self._api = api
        self._id = ident
        self._auto_remove = auto_remove
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._exit: int | None = None
        self._final_reported = False
        self._stop_grace: float | None = None
        self._created = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._parser = StreamParser()
        self.engine: str | None = None  # "prefect" once the run reported its entrypoint is a Prefect flow
        self.on_end: Callable[[DockerContainer], None] | None = None  # on the thread, once the run ended
        self._handoff: tuple[Standby, ContainerSpec, bytes] | None = None

    # ---------------------------------------------------------------------------------- the worker's side

    @property
    def id(self) -> str:
        return self._id

    def selectables(self) -> Sequence[int]:
        return [self._wake_read] if self._wake_read >= 0 else []

    def read_events(self) -> list[Event]:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 4096):
                pass
        with self._lock:
            events, self._events = self._events, []
        return events

    def exit_code(self) -> int | None:
        with self._lock:
            return self._exit if not self._events else None

    def stop(self, grace: float) -> None:
        with self._lock:
            if self._exit is not None or self._stop_grace is not None:
                return
            self._stop_grace = grace
        if self._created.is_set():
            threading.Thread(target=self._stop_container, args=(grace,), daemon=True).start()
        # not created yet: the launching thread sees the request and starts nothing

    def close(self) -> None:
        with self._lock:  # never while the thread writes: a closed fd's number may be reused at once
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_read = self._wake_write = -1

    # ---------------------------------------------------------------------------------- the thread's side

    def launch(self, spec: ContainerSpec) -> None:
        threading.Thread(target=self._launch_and_follow, args=(spec,), daemon=True).start()

    def follow_existing(self) -> None:
        self._created.set()
        threading.Thread(target=self._follow_guarded, daemon=True).start()

    def adopt(self, standby: Standby, spec: ContainerSpec, payload: bytes) -> None:
        """Serve the run with a waiting standby container (`docker_standby`): its id is the run's at once, and the
        run is handed to it when the worker says the id is recorded (`recorded`)."""
        self._id = standby.id
        self._created.set()
        self._handoff = (standby, spec, payload)

    def recorded(self) -> None:
        """The worker stored this container's id on the run: a standby may now be handed the run."""
        handoff, self._handoff = self._handoff, None
        if handoff is not None:
            threading.Thread(target=self._hand_over_and_follow, args=handoff, daemon=True).start()

    def _emit(self, events: list[Event]) -> None:
        if not events:
            return
        with self._lock:
            self._events.extend(events)
            self._final_reported |= any(isinstance(e, StateReport) and e.state in FINAL for e in events)
        self.engine = next((e.engine for e in events if isinstance(e, StateReport) and e.engine), self.engine)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._wake_write < 0:
                return
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_write, b"!")

    def _end(self, code: int, report: StateReport | None = None, note: str | None = None) -> None:
        events: list[Event] = [*self._parser.close()]
        if note:
            events.append(Output("stderr", f"wp: {note}"))
        with self._lock:
            if report is not None and not self._final_reported:
                events.append(report)
            self._events.extend(events)
            self._exit = code
        self._wake()

    def _launch_and_follow(self, spec: ContainerSpec) -> None:
        from docker.errors import DockerException

        try:
            self._ensure_image(spec)
            if self._stop_requested():
                self._end(-signal.SIGTERM)
                return
            self._create(spec)
            self._api.start(self._id)
        except DockerException as exc:
            message = f"could not start a container of image {spec.image!r}: {engine_message(exc)}"
            self._launch_failed(message)
            return
        except LaunchError as exc:
            self._launch_failed(str(exc))
            return
        grace = self._stop_grace
        if grace is not None:  # cancelled while it was being created
            self._stop_container(grace)
        self._follow_guarded()

    def _hand_over_and_follow(self, standby: Standby, spec: ContainerSpec, payload: bytes) -> None:
        """Rename the standby to the run's container name and write the run's variables to its stdin; a standby
        that cannot take the run (gone, ended, its image retagged since) is removed and the run starts cold."""
        try:
            if self._stop_requested():
                raise LaunchError("cancelled before its handoff")
            if str(self._api.inspect_image(spec.image).get("Id", "")) != standby.image_id:
                raise LaunchError(f"{spec.image} is another image now")
            attached = self._api.attach_socket(self._id, params={"stdin": 1, "stream": 1})
            sock = getattr(attached, "_sock", attached)
            try:
                self._rename(spec.name)
                sock.sendall(payload)
            finally:
                with contextlib.suppress(Exception):
                    attached.close()
                    sock.close()
        except Exception:
            with contextlib.suppress(Exception):
                self._api.remove_container(standby.id, force=True)
            self._launch_and_follow(spec)  # a new container; the worker records its id as for any run
            return
        grace = self._stop_grace
        if grace is not None:  # cancelled during the handoff
            self._stop_container(grace)
        self._follow_guarded()

    def _rename(self, name: str) -> None:
        from docker.errors import APIError

        try:
            self._api.rename(self._id, name)
        except APIError as exc:
            if exc.status_code != 409:  # 409: the name is taken (runs share readable names)
                raise
            self._api.rename(self._id, f"{name}-{os.urandom(4).hex()}")

    def _launch_failed(self, message: str) -> None:
        if self._created.is_set():
            with contextlib.suppress(Exception):
                self._api.remove_container(self._id, force=True)
        self._end(LAUNCH_FAILED, StateReport("FAILED", message), note=message)

    def _stop_requested(self) -> bool:
        with self._lock:
            return self._stop_grace is not None

    def _ensure_image(self, spec: ContainerSpec) -> None:
        from docker.errors import ImageNotFound

        if spec.pull_policy != "Always":
            try:
                self._api.inspect_image(spec.image)
                return
            except ImageNotFound as exc:
                if spec.pull_policy == "Never":
                    raise LaunchError(
                        f"image {spec.image!r} is not on this Docker Engine and image_pull_policy is Never: "
                        f"{engine_message(exc)}"
                    ) from None
        self._emit([Output("stdout", f"wp: pulling image {spec.image}")])
        try:
            for progress in self._api.pull(spec.image, stream=True, decode=True):
                if isinstance(progress, dict) and progress.get("error"):
                    raise LaunchError(f"could not pull image {spec.image!r}: {progress['error']}")
        except LaunchError:
            raise
        except Exception as exc:
            raise LaunchError(f"could not pull image {spec.image!r}: {engine_message(exc)}") from None

    def _create(self, spec: ContainerSpec) -> None:
        from docker.errors import APIError

        host_config = self._api.create_host_config(
            binds=spec.volumes or None,
            network_mode=spec.network_mode or (spec.networks[0] if spec.networks else None),
            mem_limit=spec.mem_limit,
            privileged=spec.privileged,
        )
        arguments: dict[str, Any] = {
            "image": spec.image,
            "command": spec.command,
            "environment": spec.env,
            "labels": spec.labels,
            "working_dir": spec.working_dir,
            "host_config": host_config,
            "detach": True,
            "tty": False,  # keeps stdout and stderr apart in the log stream
        }
        try:
            created = self._api.create_container(name=spec.name, **arguments)
        except APIError as exc:
            if exc.status_code != 409:  # 409: the name is taken (runs share readable names)
                raise
            created = self._api.create_container(name=f"{spec.name}-{os.urandom(4).hex()}", **arguments)
        self._id = str(created["Id"])
        self._created.set()
        self._wake()  # the worker records the id now, before the container has said anything
        extra = spec.networks[1:] if not spec.network_mode else spec.networks
        for network in extra:
            self._api.connect_container_to_network(self._id, network)

    def _follow_guarded(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # the engine went away: the run cannot be followed
            message = f"lost the container {self._id[:12]}: {engine_message(exc)}"
            self._end(-1, StateReport("CRASHED", message), note=message)
        if self.on_end is not None:
            with contextlib.suppress(Exception):  # what comes after a run must never change how it ended
                self.on_end(self)

    def _follow(self) -> None:
        self._stream_logs()
        self._api.wait(self._id)
        state = self._api.inspect_container(self._id).get("State") or {}
        code = int(state.get("ExitCode", -1))
        report = None
        if code != 0:
            report = StateReport("CRASHED", crash_reason(code, state))
        if self._auto_remove:
            with contextlib.suppress(Exception):
                self._api.remove_container(self._id, force=True)
        self._end(code, report)

    def _stream_logs(self) -> None:
        """Read the multiplexed log stream (8-byte frame headers: stream, size) until the container ends."""
        api = self._api
        url = api._url("/containers/{0}/logs", self._id)
        params = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1}
        response = api._get(url, params=params, stream=True)
        api._raise_for_status(response)
        api._disable_socket_timeout(api._get_raw_response_socket(response))
        try:
            while True:
                header = _read_exactly(response.raw, 8)
                if len(header) < 8:
                    break
                kind, size = struct.unpack(">BxxxL", header)
                frame = _read_exactly(response.raw, size)
                stamp, _, payload = frame.partition(b" ")
                stream = "stderr" if kind == 2 else "stdout"
                self._emit(self._parser.feed(stream, payload, parse_timestamp(stamp)))
        finally:
            response.close()

    def _stop_container(self, grace: float) -> None:
        with contextlib.suppress(Exception):  # gone already: its end is read by the following thread
            self._api.stop(self._id, timeout=max(0, math.ceil(grace)))


class LaunchError(Exception):
    """The container could not be started; the message says why, with the engine's words."""


def _read_exactly(raw: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def parse_timestamp(raw: bytes) -> datetime | None:
    """Docker's RFC 3339 timestamp with up to nanoseconds (`2030-01-01T00:00:00.123456789Z`), to microseconds."""
    text = raw.decode("ascii", errors="replace").rstrip("Z")
    whole, _, fraction = text.partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    micros = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    return moment.replace(microsecond=micros)


def crash_reason(code: int, state: dict[str, Any]) -> str:
    """What a container's end without a final report means, in words."""
    reason = f"the container exited with code {code} without reporting a final state"
    if state.get("OOMKilled"):
        return f"{reason}: OOMKilled (it used more memory than its mem_limit allows)"
    if code in EXPLAINED_CODES:
        return f"{reason}: {EXPLAINED_CODES[code]}"
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"{reason}: killed by {name}"
    if state.get("Error"):
        return f"{reason}: {state['Error']}"
    return reason


def engine_message(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()
