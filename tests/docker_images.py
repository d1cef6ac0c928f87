"""Build the docker executor's test images locally, with no registry: `python tests/docker_images.py`.

Each image is a root filesystem holding one CPython of this machine (the oldest the container runner supports
and the newest found: pyenv's or Debian's), its standard library, the shared libraries it links, and `/bin/sh`;
no wp. It is made with `docker import` of a tar built in memory, at the interpreter's own absolute paths so
its prefix is found as on the host. An image that exists already is kept (delete it to rebuild).

`--prefect PYTHON` (the python of tests/prefect_env.sh's venv) builds only `wp-test-prefect:<prefect version>`: the interpreter that Prefect venv is built on, with the venv's site-packages
as the interpreter's own (so the image's `python3` imports Prefect; its bundled web UIs and pip are left out).
The image carries a digest of its inputs (interpreter, installed distributions, this script) as a label, and is
rebuilt only when that digest changes. `WP_TEST_IMAGE_PREFIX` prefixes its name (a shared engine).

Prints `<image> <python version>` per image; `--json` prints them as one JSON object.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

IMAGE = "wp-test-python"
PREFECT_IMAGE = "wp-test-prefect"
INPUTS_LABEL = "io.wp.test-inputs"
# what a flow run never imports from a Prefect venv: Prefect's bundled web UIs, the installers
SKIP_SITE = {
    "pip",
    "setuptools",
    "_distutils_hack",
    "distutils-precedence.pth",
    "ui",
    "ui_build",
    "ui-v2",
    "ui_v2_build",
}
OLDEST = (3, 8)
# parts of the standard library no run needs: they would only slow the import down
SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages"}
SKIP_SUFFIXES = (".opt-1.pyc", ".opt-2.pyc", ".exe", ".a")
PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': list(sys.version_info[:3]), "
    "'executable': sys.executable, 'stdlib': sysconfig.get_paths()['stdlib'], "
    "'platstdlib': sysconfig.get_paths()['platstdlib'], 'libdir': sysconfig.get_config_var('LIBDIR'), "
    "'ldlibrary': sysconfig.get_config_var('LDLIBRARY'), 'purelib': sysconfig.get_paths()['purelib']}))"
)


def interpreters() -> dict[tuple[int, int], dict[str, object]]:
    """By (major, minor), the first interpreter found of each version from OLDEST on."""
    found: dict[tuple[int, int], dict[str, object]] = {}
    candidates = [*sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3")), "/usr/bin/python3"]
    for path in candidates:
        try:
            done = subprocess.run([path, "-I", "-c", PROBE], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        facts = json.loads(done.stdout)
        version = tuple(facts["version"][:2])
        if version >= OLDEST and version not in found:
            found[(int(version[0]), int(version[1]))] = facts
    return found


def shared_libraries(binaries: list[str]) -> set[str]:
    libs: set[str] = set()
    for chunk in range(0, len(binaries), 50):
        done = subprocess.run(["ldd", *binaries[chunk : chunk + 50]], capture_output=True, text=True)
        for line in done.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                libs.add(parts[2])
            elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
                libs.add(parts[0])
    return libs


def rootfs_tar(
    facts: dict[str, object], site_packages: str | None = None, out: io.IOBase | None = None
) -> bytes:
    """The image's root filesystem as a tar (returned, or written to `out`); `site_packages` (a venv's) becomes
    the interpreter's own."""
    executable = os.path.realpath(str(facts["executable"]))
    stdlib, platstdlib = str(facts["stdlib"]), str(facts["platstdlib"])
    files: set[str] = {executable}
    for top in {stdlib, platstdlib}:
        for root, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            files.update(
                os.path.join(root, n)
                for n in names
                if not n.endswith(SKIP_SUFFIXES) and not n.startswith("_tkinter")
            )
    libpython = os.path.join(str(facts["libdir"]), str(facts["ldlibrary"]))
    if facts["ldlibrary"] and os.path.exists(libpython) and libpython.endswith((".so", ".so.1.0")):
        files.add(os.path.realpath(libpython))
    shell = os.path.realpath("/bin/sh")
    files.add(shell)
    site: dict[str, str] = {}  # host path -> path in the image
    if site_packages:
        target = str(facts["purelib"])
        for root, dirs, names in os.walk(site_packages):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_SITE)
            for n in names:
                if n in SKIP_SITE:
                    continue
                host = os.path.join(root, n)
                site[host] = os.path.join(target, os.path.relpath(host, site_packages))
    binaries = [f for f in files if f.endswith(".so") or ".so." in f or f in (executable, shell)]
    binaries += [f for f in site if f.endswith(".so")]
    files.update(shared_libraries(binaries))
    buffer = out if out is not None else io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for name in ("tmp", "etc", "usr/bin", "bin", "lib64", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        for path in sorted(files):
            # dereferenced: the loader finds a library by the (often symlinked) name ldd printed
            tar.add(path, arcname=path.lstrip("/"), recursive=False)
        for host, inside in sorted(site.items()):
            if os.path.exists(host):  # a dangling link in a venv is nothing a run needs
                tar.add(host, arcname=inside.lstrip("/"), recursive=False)
        for name, target in {"usr/bin/python3": executable, "bin/sh": shell}.items():
            if target.lstrip("/") != name:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue() if isinstance(buffer, io.BytesIO) else b""


def build(client: object, tag: str, facts: dict[str, object]) -> None:
    api = client.api  # type: ignore[attr-defined]
    api.import_image_from_data(
        rootfs_tar(facts),
        repository=IMAGE,
        tag=tag,
        changes=["ENV PATH=/usr/local/bin:/usr/bin:/bin", 'CMD ["python3"]'],
    )


def probe(python: str) -> dict[str, object]:
    """The facts of the interpreter a venv's python runs on (run isolated: the venv's own paths are not wanted)."""
    base = subprocess.run(
        [python, "-c", "import sys; print(getattr(sys, '_base_executable', sys.executable))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    done = subprocess.run([base, "-I", "-c", PROBE], capture_output=True, text=True, check=True)
    facts: dict[str, object] = json.loads(done.stdout)
    return facts


def prefect_image(client: object, python: str) -> tuple[str, str]:
    """Build (unless one with the same inputs exists) the image with the Prefect of the venv of `python`;
    (image reference, Prefect version)."""
    import docker

    facts = probe(python)
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    distributions = sorted(n for n in os.listdir(site_packages) if n.endswith(".dist-info"))
    version = next(
        (d.removesuffix(".dist-info").split("-")[1] for d in distributions if d.startswith("prefect-")), None
    )
    if version is None:
        raise SystemExit(f"{python} has no Prefect installed in {site_packages}")
    digest = hashlib.sha256(
        json.dumps([facts, distributions, Path(__file__).read_text()], sort_keys=True).encode()
    ).hexdigest()[:16]
    repository = os.environ.get("WP_TEST_IMAGE_PREFIX", "") + PREFECT_IMAGE
    ref = f"{repository}:{version}"
    api = client.api  # type: ignore[attr-defined]
    try:
        existing = client.images.get(ref)  # type: ignore[attr-defined]
        if (existing.labels or {}).get(INPUTS_LABEL) == digest:
            return ref, version
        api.remove_image(ref, force=True)
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryFile() as tar:  # hundreds of megabytes: not in memory
        rootfs_tar(facts, site_packages, tar)  # type: ignore[arg-type]
        tar.seek(0)
        api.import_image_from_data(
            tar,
            repository=repository,
            tag=version,
            changes=[
                "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                f"LABEL {INPUTS_LABEL}={digest}",
                'CMD ["python3"]',
            ],
        )
    return ref, version


def mounted_project(image: str, project: Path) -> dict[str, object]:
    """Job variables that run `image` (built here: never pulled) without a network, in `project` mounted read-only
    at /opt/project, where the test images look for a run's flow code."""
    return {
        "image": image,
        "image_pull_policy": "Never",
        "network_mode": "none",
        "volumes": [f"{project}:/opt/project:ro"],
        "working_dir": "/opt/project",
    }


def main() -> int:
    import docker

    client = docker.from_env()
    images: dict[str, str] = {}
    if "--prefect" in sys.argv:  # only the Prefect image
        ref, prefect_version = prefect_image(client, sys.argv[sys.argv.index("--prefect") + 1])
        images[ref] = prefect_version
        print(json.dumps(images) if "--json" in sys.argv else f"{ref} prefect {prefect_version}")
        return 0
    found = interpreters()
    if not found:
        print("no CPython >= 3.8 found on this machine", file=sys.stderr)
        return 1
    chosen = sorted({min(found), max(found)})
    for version in chosen:
        facts = found[version]
        tag = f"{version[0]}.{version[1]}"
        ref = f"{IMAGE}:{tag}"
        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            build(client, tag, facts)
        images[ref] = ".".join(map(str, facts["version"]))  # type: ignore[call-overload]
    if "--json" in sys.argv:
        print(json.dumps(images))
    else:
        for ref, version in images.items():
            print(ref, version)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
