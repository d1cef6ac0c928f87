#!/usr/bin/env bash
# A real Prefect flow (flows/etl.py: @flow, @task with retries, get_run_logger, log_prints) run by a wp process
# worker, with no Prefect server: make the flow environment (.venv: Prefect 3.9.1 and wp's runner), apply the
# project, run the deployment, and show the run and its logs. The store is a throwaway SQLite file.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"
unset WP_API_URL WP_DATABASE_URL
export WP_HOME="$(mktemp -d "${TMPDIR:-/tmp}/wp-prefect-demo.XXXXXX")"
trap 'rm -rf "$WP_HOME"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the flow environment: .venv with Prefect (made once by tests/prefect_env.sh) and wp's runner on its path"
WP_PREFECT_VENV="$PWD/.venv" bash "$repo/tests/prefect_env.sh" >/dev/null
# wp's runner is standard-library only: its source on the path is all a flow environment needs
echo "$repo" > "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/wp-runner.pth"
.venv/bin/python -c 'import prefect; print("prefect", prefect.__version__)'

step "wp apply: the pool from wp.yaml, the deployment from prefect.yaml"
wp apply . --auto-approve >/dev/null
wp deployment ls

step "wp deployment run: a run of real-etl/daily with n=4"
run_id=$(wp deployment run real-etl/daily --param n=4 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

step "wp worker start --run-once: the worker runs it (the flow's output streams here)"
wp worker start --pool prefect-local --run-once

step "wp flow-run inspect: the run's state"
wp flow-run inspect "$run_id"

step "wp flow-run logs: what the flow logged"
wp flow-run logs "$run_id"
