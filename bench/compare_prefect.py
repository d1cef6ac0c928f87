"""wp and Prefect side by side, one run on this machine, each figure interleaved and taken as a user would take it.

    python bench/compare_prefect.py [--runs 5] [--wp-only]

Installs Prefect 3.9.1 into a throwaway virtualenv with `tests/prefect_env.sh` (made once, cached; its comments
say how Prefect's pin on certifi is worked around), then, for each row, alternates wp and Prefect `--runs` times and prints min-max of each and the ratio of the
medians. Every command is a whole process with its default flags; servers run on a free loopback port with a
fresh home directory (SQLite for both). Rows:

- `--help` of the CLI, and `work-pool --help`; `--help` again with an empty cache directory (wp keeps its
  rendered help there: the first run after an install, or in a new terminal width);
- for every CLI row, the process's CPU time (user + system, from `wait4`) beside its wall time: on a shared,
  loaded machine the CPU time is the steadier figure;
- `work-pool ls` and `work-pool inspect` against a running server;
- `work-pool create` (one CLI process) against a running server, and with no server (wp: its SQLite store;
  Prefect: its ephemeral API);
- server start → healthy on an existing database; server RSS when idle (the whole process tree); server exit
  on SIGTERM.

Both systems run with bytecode caching on (`PYTHONDONTWRITEBYTECODE` is dropped from the environment) and wp's
package is byte-compiled first, as `pip install .` does: an editable install under PYTHONDONTWRITEBYTECODE would
otherwise compile wp's modules from source on every command, which no installed wp does.

Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import procfs
from loopback import free_port, healthy

PREFECT = "3.9.1"
WP_BIN = Path(sys.executable).parent


def install_prefect() -> Path:
    """The bin directory of a virtualenv with Prefect in it (made once by tests/prefect_env.sh)."""
    script = Path(__file__).resolve().parents[1] / "tests" / "prefect_env.sh"
    env = os.environ | {"WP_PREFECT_VERSION": PREFECT}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1]).parent


@dataclass
class System:
    """How to drive one system's CLI and server."""

    name: str
    cli: list[str]
    env: dict[str, str]
    server_argv: Callable[[int], list[str]]
    health_path: str
    api_env: Callable[[str], dict[str, str]]
    pool_create: Callable[[str], list[str]]

    def time_cli(self, args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
        """(wall seconds, CPU seconds: the process's user + system time) of one whole CLI process, its output
        captured in files. The CPU time varies far less than the wall time on a loaded machine."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [*self.cli, *args], env=env or self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{self.name} {' '.join(args)} failed:\n{err.read().decode()[-2000:]}")
        return seconds, usage.ru_utime + usage.ru_stime

    @contextmanager
    def server(self, home: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
        """A running server on `home`: (process, base URL, seconds from start to healthy)."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            self.server_argv(port),
            env=self.home_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while not healthy(base + self.health_path):
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise SystemExit(f"{self.name} server did not become healthy")
                time.sleep(0.01)
            yield proc, base, time.perf_counter() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def home_env(self, home: Path) -> dict[str, str]:
        key = "WP_HOME" if self.name == "wp" else "PREFECT_HOME"
        return self.env | {key: str(home)}


def _user_env(drop: str) -> dict[str, str]:
    """This environment without the system's own variables and without PYTHONDONTWRITEBYTECODE."""
    return {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "PYTHONDONTWRITEBYTECODE"}


def compile_wp() -> None:
    """Byte-compile wp's package, as installing it does (an editable install leaves it to the first import)."""
    import reconciler

    for package in reconciler.__path__:
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, capture_output=True)


def wp_system() -> System:
    env = _user_env("WP_")
    return System(
        name="wp",
        cli=[str(WP_BIN / "wp")],
        env=env,
        server_argv=lambda port: [str(WP_BIN / "wp"), "server", "start", "--port", str(port)],
        health_path="/health",
        api_env=lambda base: env | {"WP_API_URL": base},
        pool_create=lambda name: ["work-pool", "create", name, "--type", "process"],
    )


def prefect_system(bin_dir: Path) -> System:
    env = _user_env("PREFECT_")
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return System(
        name="Prefect",
        cli=[str(bin_dir / "prefect")],
        env=env,
        server_argv=lambda port: [
            str(bin_dir / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        health_path="/api/health",
        api_env=lambda base: env | {"PREFECT_API_URL": base + "/api"},
        pool_create=lambda name: ["work-pool", "create", name, "--type", "process"],
    )


Samples = dict[str, dict[str, list[float]]]


def measure_round(system: System, home: Path, samples: Samples, round_no: int) -> None:
    """One sample of every row for one system (its home already holds a database)."""
    rows = samples.setdefault(system.name, {})

    def add(row: str, value: float) -> None:
        rows.setdefault(row, []).append(value)

    def add_cli(row: str, timed: tuple[float, float]) -> None:
        add(f"{row} (s)", timed[0])
        add(f"{row}, CPU user+sys (s)", timed[1])

    add_cli("--help", system.time_cli(["--help"]))
    add_cli("work-pool --help", system.time_cli(["work-pool", "--help"]))
    # wp shows a help screen it rendered before from its cache ($XDG_CACHE_HOME/wp/help), so the rows above are
    # warm after the first round; this one is the first run after an install or in a new terminal width.
    with tempfile.TemporaryDirectory() as cache:
        add_cli(
            "--help, empty help cache", system.time_cli(["--help"], system.env | {"XDG_CACHE_HOME": cache})
        )
    local = system.home_env(local_home(home))
    created = system.time_cli(system.pool_create(f"l{round_no}"), local)
    add_cli("work-pool create, one CLI process, no server", created)
    with system.server(home) as (proc, base, started):
        add("server start → healthy, existing DB (s)", started)
        api = system.api_env(base)
        add_cli("work-pool create, one CLI process", system.time_cli(system.pool_create(f"p{round_no}"), api))
        add_cli("work-pool ls against the server", system.time_cli(["work-pool", "ls"], api))
        add_cli("work-pool inspect against the server", system.time_cli(["work-pool", "inspect", "p0"], api))
        time.sleep(3)  # idle: let start-up work settle
        add("server RSS idle, process tree (MB)", procfs.tree_rss(proc.pid) / 2**20)
        t0 = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        add("server exit on SIGTERM (s)", time.perf_counter() - t0)


def local_home(home: Path) -> Path:
    """The home of the no-server rows, beside the server's."""
    return home.with_name(f"{home.name}-local")


def warm_database(system: System, home: Path) -> None:
    """Start the server once, and create a pool without one, so every measured command finds an existing,
    migrated database."""
    with system.server(home):
        pass
    system.time_cli(system.pool_create("warm"), system.home_env(local_home(home)))


def report(samples: Samples, loads: list[tuple[float, float, float]]) -> None:
    wp, prefect = samples["wp"], samples.get("Prefect")
    span = ", ".join(f"{one:.2f}/{five:.2f}/{fifteen:.2f}" for one, five, fifteen in loads)
    print(f"\nload average (1/5/15 min) at the start and the end: {span} on {os.cpu_count()} CPUs")
    print(f"{'figure':<66} {'wp (min-max)':>18} {'Prefect (min-max)':>20} {'Prefect / wp':>13}")
    for row, values in wp.items():
        line = f"{row:<66} {min(values):>8.3f}-{max(values):<9.3f}"
        if prefect is not None:
            other = prefect[row]
            ratio = statistics.median(other) / statistics.median(values)
            line += f" {min(other):>9.3f}-{max(other):<10.3f} {ratio:>12.1f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description="wp and Prefect side by side.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wp-only", action="store_true", help="Measure wp alone (no Prefect install).")
    args = parser.parse_args()
    compile_wp()
    systems = [wp_system()]
    if not args.wp_only:
        print(f"installing Prefect {PREFECT} (once, tests/prefect_env.sh)", flush=True)
        systems.append(prefect_system(install_prefect()))
    samples: Samples = {}
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="wp-vs-prefect-") as tmp:
        homes = {s.name: Path(tmp) / s.name for s in systems}
        for system in systems:
            warm_database(system, homes[system.name])
        for round_no in range(args.runs):
            for system in systems:  # interleaved: load on the machine hits both alike
                measure_round(system, homes[system.name], samples, round_no)
            print(f"round {round_no + 1}/{args.runs} done", flush=True)
    loads.append(os.getloadavg())
    report(samples, loads)


if __name__ == "__main__":
    main()
