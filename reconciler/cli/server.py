"""`wp server start`: serve the HTTP API of the store chosen by environment, the scheduler running beside it,
and the continuous sync when WP_SYNC_REPO is set.

Owns the server process: opening the store (WP_DATABASE_URL or the embedded SQLite; never WP_API_URL, a
server does not proxy another server), reading WP_API_KEY, and running uvicorn, whose SIGTERM/SIGINT handling
ends the app's lifespan, which stops the scheduler thread. A SIGTERM ends the process with exit code 0 once
that graceful shutdown is done (uvicorn re-raises the signal it caught, which would otherwise kill the process
with -15, a failure for systemd and CI). Must never implement routes or scheduling itself.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli.context import err_console, fail, keep_until_exit

if TYPE_CHECKING:
    from reconciler.gitops.sync import SyncLoop
    from reconciler.store.base import Store

app = typer.Typer(help="Run the wp server (HTTP API, scheduler, late-run and crash detection).")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: before it starts listening, or re-raised by uvicorn after its
    graceful shutdown. Either way the server is done, and a requested stop is a success."""
    raise typer.Exit(0)


def _server(uvicorn: Any, config: Any) -> Any:
    """A uvicorn server that stops at once on SIGTERM/SIGINT.

    - It first answers the workers' wake long-polls: uvicorn's graceful shutdown waits for open requests, and a
      long-poll would hold it up for its whole timeout.
    - uvicorn looks at its exit flag every 0.1 s; here the signal also wakes that loop, so the stop starts now.
    - With no connection open, nothing needs uvicorn's 0.1 s grace for connections to finish: the server stops
      listening and ends the app's lifespan straight away. With connections open, uvicorn's own shutdown runs.
    """
    import asyncio
    import contextlib
    import logging

    class Server(uvicorn.Server):  # type: ignore[misc]
        _loop: asyncio.AbstractEventLoop | None = None
        _woken: asyncio.Event | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            config.app.state.work_signal.close()
            super().handle_exit(sig, frame)
            if self._loop is not None and self._woken is not None:
                self._loop.call_soon_threadsafe(self._woken.set)

        async def main_loop(self) -> None:
            self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
            counter = 0
            while not await self.on_tick(counter):  # uvicorn's tick: date header, request limit, exit flag
                counter = (counter + 1) % 864_000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), 0.1)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.server_state.connections or self.server_state.tasks:
                await super().shutdown(sockets=sockets)
                return
            logging.getLogger("uvicorn.error").info("Shutting down")  # as uvicorn's own shutdown says
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for server in self.servers:
                await server.wait_closed()
            if not self.force_exit:
                await self.lifespan.shutdown()

    return Server(config)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Start-up makes ~150,000 objects that live as long as the server (modules, pydantic models, routes),
    and the cyclic garbage collector scanned them in ~200 collections while they were made: 7-9% of
    start-up's CPU. Paused instead, then one full collection (start-up leaves ~1,000 unreachable objects, freed
    here as before), then the survivors frozen: the collections made while serving no longer scan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        if enabled:
            gc.enable()


@app.callback()
def _group() -> None:
    """Run the wp server (HTTP API, scheduler, late-run and crash detection)."""


@app.command("start")
def start(
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="TCP port to listen on."),
    scheduler: bool = typer.Option(
        True, "--scheduler/--no-scheduler", help="Run the scheduler in the server process."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the API at http://HOST:PORT (OpenAPI at /docs and /openapi.json) until SIGTERM or Ctrl-C."""
    # Listen before anything else, even the imports of the server's libraries: a busy port is one line and
    # exit 1 at once, not uvicorn's log after the app started (and its exit 3, the code reserved for a stale
    # plan or a held lock).
    sock = _listen(host, port)
    port = int(sock.getsockname()[1])
    with _collector_paused():
        import uvicorn

        from reconciler.api import create_app
        from reconciler.store.open import open_store

        env = dict(os.environ)
        if env.pop("WP_API_URL", None):
            err_console.print(
                "WP_API_URL is ignored by `wp server start`: the server serves its own database."
            )
        api_key = env.get("WP_API_KEY") or None
        store = open_store(env)
        loop = sync_loop_from_env(store, env)
        application = create_app(
            store,
            api_key=api_key,
            background=scheduler,
            sync_loop=loop,
            webhook_secret=env.get("WP_SYNC_WEBHOOK_SECRET") or None,
        )
    if loop is not None:
        passes = application.state.metrics.sync_passes
        loop.report = lambda result: passes.labels(result.outcome).inc()
        err_console.print(f"wp sync: following {loop.settings.key} every {loop.settings.interval:g}s")
    where = "bearer token required" if api_key else "no authentication (set WP_API_KEY to require a token)"
    err_console.print(f"wp server on http://{host}:{port} ({where}); web UI at http://{host}:{port}/ui/")
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        # Plain asyncio and h11, named rather than "auto" (which probes for uvloop and httptools), and no
        # WebSocket protocol: wp serves none, and loading one cost each start-up tens of milliseconds.
        config = uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level=log_level,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="on",
            interface="asgi3",
        )
        server = _server(uvicorn, config)
        server.run(sockets=[sock])
        if not server.started:
            fail(f"the server on {host}:{port} did not start; see the log above")
    finally:
        sock.close()
        close = getattr(store, "close", None)
        if callable(close):
            close()
        # The app, the store and every imported module are freed by the exit itself: tearing the interpreter
        # down took most of a SIGTERM's half second. The lifespan has stopped the scheduler and sync threads.
        keep_until_exit(application)


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket on HOST:PORT (port 0: any free one), as uvicorn would bind it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})", hint="e.g. --host 127.0.0.1")
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use; stop what listens there or pass --port N")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def sync_loop_from_env(store: Store, env: Mapping[str, str]) -> SyncLoop | None:
    """The sync loop that WP_SYNC_REPO (with WP_SYNC_BRANCH, WP_SYNC_PATH, WP_SYNC_INTERVAL, WP_SYNC_PRUNE,
    WP_SYNC_SELF_HEAL, WP_SYNC_MAX_BACKOFF) asks the server to run, or None."""
    repo = env.get("WP_SYNC_REPO")
    if not repo:
        return None
    from reconciler.cli.context import actor
    from reconciler.gitops.source import default_cache_root
    from reconciler.gitops.sync import SyncLoop, SyncSettings

    try:
        interval = float(env.get("WP_SYNC_INTERVAL") or 60)
        max_backoff = float(env.get("WP_SYNC_MAX_BACKOFF") or 600)
    except ValueError as exc:
        fail(f"WP_SYNC_INTERVAL and WP_SYNC_MAX_BACKOFF must be numbers of seconds: {exc}")
    if interval <= 0:
        fail(f"WP_SYNC_INTERVAL must be positive, got {interval:g}")
    settings = SyncSettings(
        repo=repo,
        branch=env.get("WP_SYNC_BRANCH") or "main",
        path=env.get("WP_SYNC_PATH") or ".",
        interval=interval,
        prune=_flag(env, "WP_SYNC_PRUNE"),
        self_heal=_flag(env, "WP_SYNC_SELF_HEAL"),
        max_backoff=max_backoff,
        actor=f"wp-sync ({actor()})",
        cache_dir=default_cache_root(env),
    )
    return SyncLoop(store, settings, env=env)


if __name__ == "__main__":
    app()
