"""Build the docker executor's test images locally, with no registry: `python tests/docker_images.py`.

Each image is a root filesystem holding one CPython of this machine (the oldest the container runner supports
and the newest found: pyenv's or Debian's), its standard library, the shared libraries it links, and `/bin/sh`;
no wp. It is made with `docker import` of a tar built in memory, at the interpreter's own absolute paths so
its prefix is found as on the host. An image that exists already is kept (delete it to rebuild).

Prints `<image> <python version>` per image; `--json` prints them as one JSON object.
"""

from __future__ import annotations

import glob
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

IMAGE = "wp-test-python"
OLDEST = (3, 8)
# parts of the standard library no run needs: they would only slow the import down
SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages"}
SKIP_SUFFIXES = (".opt-1.pyc", ".opt-2.pyc", ".exe", ".a")
PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': list(sys.version_info[:3]), "
    "'executable': sys.executable, 'stdlib': sysconfig.get_paths()['stdlib'], "
    "'platstdlib': sysconfig.get_paths()['platstdlib'], 'libdir': sysconfig.get_config_var('LIBDIR'), "
    "'ldlibrary': sysconfig.get_config_var('LDLIBRARY')}))"
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


def rootfs_tar(facts: dict[str, object]) -> bytes:
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
    binaries = [f for f in files if f.endswith(".so") or ".so." in f or f in (executable, shell)]
    files.update(shared_libraries(binaries))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for name in ("tmp", "etc", "usr/bin", "bin", "lib64", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        for path in sorted(files):
            # dereferenced: the loader finds a library by the (often symlinked) name ldd printed
            tar.add(path, arcname=path.lstrip("/"), recursive=False)
        for name, target in {"usr/bin/python3": executable, "bin/sh": shell}.items():
            if target.lstrip("/") != name:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


def build(client: object, tag: str, facts: dict[str, object]) -> None:
    api = client.api  # type: ignore[attr-defined]
    api.import_image_from_data(
        rootfs_tar(facts),
        repository=IMAGE,
        tag=tag,
        changes=["ENV PATH=/usr/local/bin:/usr/bin:/bin", 'CMD ["python3"]'],
    )


def main() -> int:
    import docker

    client = docker.from_env()
    found = interpreters()
    if not found:
        print("no CPython >= 3.8 found on this machine", file=sys.stderr)
        return 1
    chosen = sorted({min(found), max(found)})
    images: dict[str, str] = {}
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
