#!/usr/bin/env bash
# Makes (once) a separate virtualenv with a real Prefect in it, for the tests and the bench of Prefect flows run
# by wp's workers. wp's own environment never gets Prefect: the venv plays a user's flow environment, and a
# deployment's job `command` points at its python.
#
# Prefect 3.9.1 pins certifi>=2026.10.19, a release the package index here lacks: its dependencies are installed
# from its own metadata with that one pin relaxed to certifi==2026.10.18, then Prefect itself with --no-deps.
#
# Usage: bash tests/prefect_env.sh        → prints the venv's python path (last line of stdout)
# Env:   WP_PREFECT_VERSION (default 3.9.1), WP_PREFECT_VENV (default ~/.cache/wp-test/prefect-<version>)
set -euo pipefail
version="${WP_PREFECT_VERSION:-3.9.1}"
venv="${WP_PREFECT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wp-test/prefect-${version}}"
py="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# pip's output goes to stderr (stdout is the python's path), without its notes about unusable index locations
pip_quiet() { "$py" -m pip "$@" 2>&1 | { grep -v -e "is ignored: it is neither" -e "Running pip as the 'root' user" || true; } >&2; }

# cached: a venv whose marker file names this version is complete
if [ -x "$py" ] && [ "$(cat "$venv/.wp-prefect-ok" 2>/dev/null)" = "$version" ]; then
  echo "$py"
  exit 0
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip_quiet download -q --no-deps "prefect==${version}" -d "$work"
wheel="$(ls "$work"/prefect-*.whl)"
# the wheel's Requires-Dist lines, extras dropped, environment markers kept (pip evaluates them)
"$py" - "$wheel" > "$work/requirements.txt" <<'PY'
import re
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = wheel.read(name).decode()
for line in metadata.splitlines():
    if not line.startswith("Requires-Dist:"):
        continue
    requirement = line.split(":", 1)[1].strip()
    if "extra ==" in requirement:
        continue
    if re.match(r"certifi\b", requirement):
        requirement = "certifi==2026.10.18"  # the pinned release is not in the index here
    print(requirement)
PY
pip_quiet install -q -r "$work/requirements.txt"
pip_quiet install -q --no-deps "$wheel"
"$py" -c "import prefect; assert prefect.__version__ == '${version}', prefect.__version__" >&2
echo "$version" > "$venv/.wp-prefect-ok"
echo "$py"
