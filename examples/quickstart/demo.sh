#!/usr/bin/env bash
# The whole runtime in under a minute (most of it Python starting each command): a wp server (API + scheduler) on a free local port with the embedded
# SQLite store behind it ($WP_HOME/wp.db, default ~/.wp), every later command talking to it over HTTP
# (WP_API_URL): plan and apply examples/quickstart, start a worker, trigger a deployment and follow it,
# show the run and its logs, then stop the worker and the server cleanly.
set -euo pipefail
cd "$(dirname "$0")"
unset WP_API_URL WP_DATABASE_URL  # this demo brings its own server on the embedded store

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/wp-demo.XXXXXX")
server="" worker=""
stop() {  # SIGTERM is a graceful stop for both: the worker finishes what it runs, the server exits 0
    local pid
    for pid in $worker $server; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$logs"
}
trap stop EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export WP_API_URL="http://127.0.0.1:$port"

step "wp server start: the API and the scheduler on $WP_API_URL"
wp server start --host 127.0.0.1 --port "$port" >"$logs/server.log" 2>&1 &
server=$!
if ! python3 - "$WP_API_URL/health" "$server" <<'EOF'; then
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break  # the server exited: its log says why
    time.sleep(0.2)
sys.exit(1)
EOF
    echo "wp server did not come up; its log:" >&2
    cat "$logs/server.log" >&2
    exit 1
fi
echo "wp server is up; every command below uses WP_API_URL=$WP_API_URL"

step "wp plan: what the configuration would change"
wp plan .

step "wp apply: make it so, in one transaction"
wp apply . --auto-approve >/dev/null
wp work-queue ls --pool local

step "wp worker start: a process worker polls the 'local' pool (its own log: $logs/worker.log)"
# The worker's log goes to a file: `--watch` below prints the run's output once, as it arrives.
wp worker start --pool local --name quickstart-worker --limit 2 >"$logs/worker.log" 2>&1 &
worker=$!

step "wp deployment run --watch: trigger say-hello/hello and follow it to a final state"
status=0
wp deployment run say-hello/hello --param name=newcomer --watch || status=$?

step "wp flow-run ls: the run"
wp flow-run ls --state COMPLETED --state FAILED --state CRASHED
run_id=$(wp flow-run ls --deployment say-hello/hello --state COMPLETED --state FAILED --state CRASHED --json |
    python3 -c 'import json, sys; print([r["id"] for r in json.load(sys.stdin) if r["parameters"]["name"] == "newcomer"][0])')  # newest first

step "wp flow-run logs: what it printed"
wp flow-run logs "$run_id"

step "stopping the worker and the server"
stop
trap - EXIT
echo "stopped."
exit $status
