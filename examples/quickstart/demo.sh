#!/usr/bin/env bash
# The whole loop on the embedded SQLite store ($WP_HOME/wp.db, default ~/.wp):
# plan and apply examples/quickstart, start a worker, trigger a deployment, show the completed run and its logs.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "wp plan: what the configuration would change"
wp plan .

step "wp apply: make it so, in one transaction"
wp apply . --auto-approve >/dev/null
wp work-queue ls --pool local

step "wp worker start: a process worker polls the 'local' pool"
wp worker start --pool local --name quickstart-worker --limit 2 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null || true; wait $worker 2>/dev/null || true' EXIT

step "wp deployment run --watch: trigger say-hello/hello and follow it to a final state"
status=0
wp deployment run say-hello/hello --param name=newcomer --watch || status=$?
run_id=$(wp flow-run ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

step "wp flow-run ls: the run"
wp flow-run ls

step "wp flow-run logs: what it printed"
wp flow-run logs "$run_id"

exit $status
