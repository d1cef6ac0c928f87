"""A warm Prefect interpreter per flow environment, so a Prefect flow's run does not pay `import prefect` each time.

Owns deciding whether a run may use one, finding or starting it, handing a run to it, and the warm server itself.

Why: importing Prefect costs 1.5 s of CPU, far more than running a small flow. The first Prefect run of a flow
environment (its python, PYTHONPATH and PREFECT_* settings) starts a server that imports Prefect once and listens
on a Unix socket in a private directory, and hands itself to it like any later run (rather than importing
Prefect too, side by side with the server: twice the CPU on a small machine, for no gain); later runs of that
environment send it their
environment, working directory and file descriptors (stdin, stdout, stderr and the report pipe, by SCM_RIGHTS), and
it forks a child that runs the run exactly as `entry` would, writing to the run's own pipes. The server never
starts a thread, so forking is safe, and it exits after IDLE_SECONDS without a run. A server keyed by the mtimes
of Prefect and of wp's runner is never reused across an upgrade of either. A server holds its environment's
lock file for its life, so two started at once (two workers, a worker's pre-warm and a run) leave one serving.

A process worker pre-warms (`python -m reconciler.runtime.prefect_warm --prewarm`, in the flow's python with the
run's environment; see `prewarm.py`): the server is started before the environment's first run, which is then
warm too. The pre-warm sends `PING` (no run, no file descriptors), which the server answers with its pid once it
has imported what a run needs.

The run's process (`entry`, the worker's child) stays the run's handle: it forwards SIGTERM/SIGINT to the forked
child's process group and exits with its exit code; if it is killed, the child sees its connection close and kills
its own group. Used only for file entrypoints that mention `prefect`, with a report pipe (the process executor),
without a `pip_install_requirements` step (which could change the packages the server has imported), and unless
`WP_PREFECT_WARM=0`. Stdlib-only at import time.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

TYPE_CHECKING = False  # every flow-run process imports this module: `typing` only for the type checker
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator, Mapping
    from typing import Any

ENV_WARM = "WP_PREFECT_WARM"  # "0": never use a warm interpreter
ENV_IDLE = "WP_PREFECT_WARM_IDLE"  # seconds a server waits for a run before it exits
IDLE_SECONDS = 600.0
CONNECT_TIMEOUT = 2.0
_MAX_ADDRESS = 107  # bytes of a Unix socket's path (sun_path holds 108, with its NUL)
LISTEN_TIMEOUT = 10.0  # seconds a first run waits for the server it started to listen, before running cold
STARTED_TIMEOUT = 120.0  # seconds a run waits for the server to fork it (a server still importing Prefect)
LOCK_HOLDER_GRACE = 1.0  # seconds to wait for the server holding the lock to listen, after ours left
# entry's variables (not imported: entry imports this module)
_ENV_REPORT_FD = "WP_REPORT_FD"
_ENV_ENTRYPOINT = "WP_ENTRYPOINT"
_ENV_PULL_STEPS = "WP_PULL_STEPS"
_FDS = 4  # stdin, stdout, stderr, report pipe
# a request of no run and no file descriptors: a pre-warm asking for the server's pid once it is warm
PING = bytes(8)
FIRST_RUN_IMPORTS = (
    "prefect.utilities.visualization",
    "pydantic.v1",
    "anyio._backends._asyncio",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "encodings.idna",
    "rich._emoji_codes",
)
_RUNNER = "reconciler.runtime.prefect_warm"  # this module's name, also when it runs as __main__


def wanted(env: Mapping[str, str], cwd: Path) -> bool:
    """Whether this run should go to a warm interpreter (see the module docstring for the rules)."""
    if not env.get(_ENV_REPORT_FD) or not hasattr(socket, "send_fds"):
        return False
    return warm_entrypoint(env, cwd)


def warm_entrypoint(env: Mapping[str, str], cwd: Path) -> bool:
    """Whether a run with this environment, in `cwd`, is one a warm interpreter serves: a file entrypoint that
    mentions Prefect, no `pip_install_requirements` step, and `WP_PREFECT_WARM` not "0". Also what a worker asks
    before pre-warming a deployment's flow environment."""
    if env.get(ENV_WARM) == "0":
        return False
    if "pip_install_requirements" in env.get(_ENV_PULL_STEPS, ""):
        return False
    target = env.get(_ENV_ENTRYPOINT, "").rpartition(":")[0]
    if not target.endswith(".py"):
        return False
    try:
        return "prefect" in (cwd / target).read_text(errors="replace")
    except OSError:
        return False


def prewarm(env: Mapping[str, str]) -> int | None:
    """Make sure the warm server of this flow environment runs (start it unless one answers) and return its
    pid once it is warm (Prefect imported); None if it could not start. What a worker runs, in the flow's own
    python, before the environment's first run, so the socket key is exactly the one that run computes."""
    try:
        path = socket_path(env)
    except OSError:
        return None
    conn = _connect(path)
    if conn is None:  # in the background: it may wait longer than a run, which would rather go cold
        conn = _await_listening(path, _start_server(path, env), STARTED_TIMEOUT)
    if conn is None:
        return None
    with conn:
        try:
            conn.sendall(PING)
            conn.settimeout(STARTED_TIMEOUT)  # the server answers once it has imported Prefect
            answer = json.loads(conn.makefile("r", encoding="utf-8").readline() or "null")
        except (OSError, ValueError):
            return None
    return int(answer["server"]) if isinstance(answer, dict) and "server" in answer else None


def run_warm(env: Mapping[str, str]) -> int | None:
    """The run's exit code after a warm interpreter ran it; None when none could take it (run it here). Starts
    one for the next runs when there is none."""
    try:
        path = socket_path(env)
    except OSError:  # no private directory for the socket under TMPDIR: run it here
        return None
    conn = _connect(path)
    if conn is None:
        conn = _await_listening(path, _start_server(path, env))
        if conn is None:
            return None  # the server did not come up: run it here
    with conn:
        try:
            payload = json.dumps({"env": dict(env), "cwd": os.getcwd()}).encode()
            fds = [0, 1, 2, int(env[_ENV_REPORT_FD])]
            socket.send_fds(conn, [len(payload).to_bytes(8, "big")], fds)
            conn.sendall(payload)
            reader = conn.makefile("r", encoding="utf-8")
            conn.settimeout(STARTED_TIMEOUT)  # a server still importing Prefect accepts when it is done
            started = json.loads(reader.readline() or "null")
            conn.settimeout(None)
        except (OSError, ValueError):
            return (
                None  # nothing ran (a child forked after this gives up sees the connection closed and exits)
            )
        if not isinstance(started, dict) or "pid" not in started:
            return None
        child = int(started["pid"])
        _forward_signals(child)
        try:
            ended = json.loads(reader.readline() or "null")
        except (OSError, ValueError):
            ended = None
    # the child ended without saying how (killed): exit non-zero; the worker sees no final state → CRASHED
    return int(ended["exit"]) if isinstance(ended, dict) and "exit" in ended else 1


def _forward_signals(child: int) -> None:
    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def socket_path(env: Mapping[str, str]) -> Path:
    """One server per flow environment and version of Prefect and of wp's runner, in a directory only we can use."""
    # Imported here: hashlib loads OpenSSL, megabytes of every flow-run process that imports this module only
    # to ask `wanted`.
    import hashlib
    import tempfile

    key = {
        "python": sys.executable,
        "path": env.get("PYTHONPATH", ""),
        "prefect": {k: v for k, v in env.items() if k.startswith("PREFECT_")},
        "mtimes": [_mtime(importlib.util.find_spec("prefect")), _mtime(importlib.util.find_spec(_RUNNER))],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / f"wp-prefect-warm-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o077:
        raise PermissionError(f"{directory} is not private to this user")
    return directory / f"{digest}.sock"


def _mtime(spec: Any) -> float:
    """The newest mtime among the Python files of a module's directory: changes with any edit or upgrade."""
    origin = getattr(spec, "origin", None)
    if not origin:
        return 0.0
    folder = Path(origin).parent
    try:
        return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.glob("*.py"))])
    except OSError:
        return 0.0


@contextlib.contextmanager
def _addressable(path: Path) -> Iterator[str]:
    """`path` as a Unix socket address. An address holds at most 107 bytes, and a deep TMPDIR (a CI runner's,
    pytest's) makes a longer path: then the socket is reached through its directory's descriptor
    (/proc/self/fd/N/NAME, Linux), so it stays in the private directory whatever its depth."""
    if len(os.fsencode(str(path))) <= _MAX_ADDRESS or not os.path.isdir("/proc/self/fd"):
        yield str(path)
        return
    fd = os.open(str(path.parent), os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT)
    try:
        with _addressable(path) as address:
            conn.connect(address)
    except OSError:
        conn.close()
        return None
    conn.settimeout(None)
    return conn


def _await_listening(
    path: Path, server: subprocess.Popen[bytes] | None, timeout: float = LISTEN_TIMEOUT
) -> socket.socket | None:
    """A connection to the server just started, once it listens (it binds before importing Prefect); None if it
    failed or did not listen in time. If it left because another server holds the environment's lock (two
    workers, or a worker's pre-warm and a run, starting one at once), a connection to that one."""
    if server is None:
        return None
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    while time.monotonic() < deadline:
        conn = _connect(path)
        if conn is not None:
            return conn
        if exited_at is None and server.poll() is not None:
            exited_at = time.monotonic()
        if exited_at is not None and time.monotonic() - exited_at > LOCK_HOLDER_GRACE:
            return None  # nobody listens: it failed (a lock holder binds within milliseconds of taking it)
        time.sleep(0.02)
    return None


def _start_server(path: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
    """Start the server in the background (its own session, no output), with the flow environment's settings."""
    import subprocess

    server_env = {k: v for k, v in env.items() if not k.startswith("WP_")}
    try:
        return subprocess.Popen(
            [sys.executable, "-m", _RUNNER, str(path), env.get(ENV_IDLE) or str(IDLE_SECONDS)],
            env=server_env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- the server


def serve(path: Path, idle: float = IDLE_SECONDS) -> None:
    """Import Prefect, then fork a child per run until `idle` seconds pass without one."""
    lock = _lock(path)
    if lock is None:
        return  # another server of this environment runs (or is starting)
    listener = _bind(path)
    if listener is None:
        os.close(lock)
        return
    try:
        _warm_up()
        if threading.active_count() != 1:
            return  # forking with threads running is unsafe: let runs go cold
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        listener.settimeout(idle)
        warmed = False
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the idle timeout (socket.timeout before Python 3.10), or the socket went away
                return
            pinged = _take(conn)
            if not warmed:  # after the first run (which waits for this server) is forked, not before it
                _warm_up_later_runs()
                warmed = True
                if threading.active_count() != 1:
                    return
            if pinged:  # a pre-warm: answered when a run would find everything imported
                with contextlib.suppress(OSError), conn:
                    conn.sendall(json.dumps({"server": os.getpid()}).encode() + b"\n")
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        listener.close()
        os.close(lock)


def _lock(path: Path) -> int | None:
    """Hold the environment's lock for this server's life (None when another process holds it), so two servers
    never serve one socket path. A POSIX record lock: the forked runs do not inherit it, and it goes with the
    server's process, even when killed."""
    import fcntl

    try:
        fd = os.open(str(path.with_suffix(".lock")), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _bind(path: Path) -> socket.socket | None:
    """Listen on `path` (under the lock: a socket file left there is a dead server's)."""
    with contextlib.suppress(OSError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _addressable(path) as address:
            listener.bind(address)
    except OSError:
        listener.close()
        return None
    listener.listen(16)
    return listener


def _warm_up() -> None:
    """What every Prefect run imports, imported once before the first run is forked (imports only: no flow runs,
    so no threads start)."""
    from reconciler.runtime import prefect_lean

    prefect_lean.install()  # a forked run finds Prefect as a cold one would
    import prefect
    import prefect.events.clients
    import prefect.events.worker
    import prefect.flow_engine
    import prefect.task_engine  # noqa: F401

    import reconciler.runtime.entry
    import reconciler.runtime.prefect_flows  # noqa: F401


def _warm_up_later_runs() -> None:
    """What a flow's first run in a process imports lazily: imported once the first run is forked (it imports
    them itself, as a cold run would), so later forks find them."""
    with contextlib.suppress(ImportError):
        import fastapi.encoders  # noqa: F401 - Prefect serializes non-JSON flow parameters with it
    # measured with Prefect 3.9: optional, they may move between versions
    for name in FIRST_RUN_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _take(conn: socket.socket) -> bool:
    """Receive one run and fork its child; a malformed request is dropped. True for a pre-warm's `PING`, whose
    connection is left open for the answer."""
    fds: list[int] = []
    try:
        conn.settimeout(CONNECT_TIMEOUT)
        header, fds, _, _ = socket.recv_fds(conn, 8, _FDS)
        if header == PING and not fds:
            return True
        size = int.from_bytes(header, "big")
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("the run's process closed the connection")
            data += chunk
        request = json.loads(data)
        if len(fds) != _FDS:
            raise OSError("file descriptors missing")
        conn.settimeout(None)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return False
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(conn, fds, request["env"], request["cwd"])
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.close()
    return False


def _child(conn: socket.socket, fds: list[int], env: dict[str, str], cwd: str) -> int:
    os.setsid()  # its own process group: the run's process signals the group, and it can kill its own
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    report = os.dup(fds[3])
    for fd in fds:
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    os.environ[_ENV_REPORT_FD] = str(report)
    os.environ[ENV_WARM] = "0"
    sys.stdout.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    threading.Thread(target=_die_with_the_run, args=(conn,), daemon=True).start()
    from reconciler.runtime import entry

    code = 1
    try:
        code = entry.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return code


def _die_with_the_run(conn: socket.socket) -> None:
    """The run's process went away (killed): so does this run, with everything it started."""
    with contextlib.suppress(OSError):
        while conn.recv(1024):
            pass
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    if sys.argv[1:] == ["--prewarm"]:  # a worker's pre-warm: one JSON line with the server's pid (or null)
        print(json.dumps({"server": prewarm(os.environ)}), flush=True)
    else:
        serve(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else IDLE_SECONDS)
