"""wp and Prefect side by side, one run on this machine, each figure interleaved and taken as a user would take it.

    python bench/compare_prefect.py [--runs 5] [--prefect-venv DIR]

Installs Prefect 3.9.1 into a throwaway virtualenv (`~/.cache/wp-bench/prefect-3.9.1` unless given; made once),
then, for each row, alternates wp and Prefect `--runs` times and prints min-max of each and the ratio of the
medians. Every command is a whole process with its default flags; servers run on a free loopback port with a
fresh home directory (SQLite for both). Rows:

- `--help` of the CLI;
- `work-pool ls` and `work-pool inspect` against a running server;
- `work-pool create` (one CLI process) against a running server;
- server start → healthy on an existing database; server RSS when idle (the whole process tree); server exit
  on SIGTERM.

Prefect's pin on `certifi>=2026.10.19` does not resolve from this machine's index, so its dependencies are
installed from its wheel's metadata with `certifi==2026.10.18`, then Prefect with `--no-deps`. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import procfs

PREFECT = "3.9.1"
CERTIFI = "certifi==2026.10.18"
WP_BIN = Path(sys.executable).parent


def install_prefect(venv: Path) -> Path:
    """The virtualenv's bin directory, Prefect installed in it (once)."""
    bin_dir = venv / "bin"
    if (bin_dir / "prefect").exists():
        return bin_dir
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [*pip[:4], "download", "-q", "--no-deps", "-d", tmp, f"prefect=={PREFECT}"], check=True
        )
        wheel = next(Path(tmp).glob("prefect-*.whl"))
        requirements = [r for r in wheel_requirements(wheel) if not r.lower().startswith("certifi")]
    subprocess.run([*pip, *requirements, CERTIFI], check=True)
    subprocess.run([*pip, "--no-deps", f"prefect=={PREFECT}"], check=True)
    return bin_dir


def wheel_requirements(wheel: Path) -> list[str]:
    """The unconditional `Requires-Dist` lines of a wheel (extras left out)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    out = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = line.split(":", 1)[1].strip()
            if "extra ==" not in requirement:
                out.append(requirement)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def tree_rss(pid: int) -> int:
    return procfs.rss(pid) + sum(procfs.rss(child) for child in procfs.children(pid))


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

    def time_cli(self, args: list[str], env: dict[str, str] | None = None) -> float:
        t0 = time.perf_counter()
        done = subprocess.run([*self.cli, *args], env=env or self.env, capture_output=True, check=False)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{self.name} {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
        return seconds

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


def wp_system() -> System:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
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

    add("--help", system.time_cli(["--help"]))
    with system.server(home) as (proc, base, started):
        add("server start → healthy, existing DB (s)", started)
        api = system.api_env(base)
        add("work-pool create, one CLI process (s)", system.time_cli(system.pool_create(f"p{round_no}"), api))
        add("work-pool ls against the server (s)", system.time_cli(["work-pool", "ls"], api))
        add("work-pool inspect against the server (s)", system.time_cli(["work-pool", "inspect", "p0"], api))
        time.sleep(3)  # idle: let start-up work settle
        add("server RSS idle, process tree (MB)", tree_rss(proc.pid) / 2**20)
        t0 = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        add("server exit on SIGTERM (s)", time.perf_counter() - t0)


def warm_database(system: System, home: Path) -> None:
    """Start the server once so every measured start finds an existing, migrated database."""
    with system.server(home):
        pass


def report(samples: Samples) -> None:
    wp, prefect = samples["wp"], samples["Prefect"]
    print(f"\n{'figure':<44} {'wp (min-max)':>18} {'Prefect (min-max)':>20} {'Prefect / wp':>13}")
    for row, values in wp.items():
        other = prefect[row]
        ratio = statistics.median(other) / statistics.median(values)
        print(
            f"{row:<44} {min(values):>8.3f}-{max(values):<9.3f} {min(other):>9.3f}-{max(other):<10.3f} "
            f"{ratio:>12.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="wp and Prefect side by side.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefect-venv", type=Path, default=Path.home() / ".cache/wp-bench/prefect-3.9.1")
    args = parser.parse_args()
    print(f"installing Prefect {PREFECT} into {args.prefect_venv} (once)", flush=True)
    systems = [wp_system(), prefect_system(install_prefect(args.prefect_venv))]
    samples: Samples = {}
    with tempfile.TemporaryDirectory(prefix="wp-vs-prefect-") as tmp:
        homes = {s.name: Path(tmp) / s.name for s in systems}
        for system in systems:
            warm_database(system, homes[system.name])
        for round_no in range(args.runs):
            for system in systems:  # interleaved: load on the machine hits both alike
                measure_round(system, homes[system.name], samples, round_no)
            print(f"round {round_no + 1}/{args.runs} done", flush=True)
    report(samples)


if __name__ == "__main__":
    main()
