# Sourced by .ci/run: make a Docker Engine available for the docker executor's tests and build their images.
# Reuses an engine that already answers (DOCKER_HOST or the default socket); else installs Debian's docker.io
# when dockerd is missing and starts dockerd with its own data root, pid file, socket and log under
# /var/lib/wp-ci-docker. Networking is off (--iptables=false --bridge=none): the tests use network_mode none
# or host, and no registry is ever reached: the images are built locally by tests/docker_images.sh.

start_docker() {
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "reusing the Docker Engine at ${DOCKER_HOST:-the default socket}"
    return 0
  fi
  DOCKER_CI_DIR=/var/lib/wp-ci-docker
  if [ -z "${DOCKER_HOST:-}" ] && DOCKER_HOST="unix://$DOCKER_CI_DIR/docker.sock" docker version >/dev/null 2>&1; then
    export DOCKER_HOST="unix://$DOCKER_CI_DIR/docker.sock"  # one this script started before
    echo "reusing the Docker Engine at $DOCKER_HOST"
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd not found: installing Debian's docker.io"
    if [ "$(id -u)" != 0 ]; then echo "Docker is missing and only root can install it (apt-get install docker.io)"; return 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  mkdir -p "$DOCKER_CI_DIR"
  export DOCKER_HOST="unix://$DOCKER_CI_DIR/docker.sock"
  dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$DOCKER_CI_DIR/data" --exec-root "$DOCKER_CI_DIR/exec" \
    --pidfile "$DOCKER_CI_DIR/docker.pid" --host "$DOCKER_HOST" \
    >"$DOCKER_CI_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local i
  for i in $(seq 1 60); do
    if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      echo "dockerd $(docker version --format '{{.Server.Version}}') on $DOCKER_HOST"
      return 0
    fi
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "dockerd did not start; its log:"; tail -20 "$DOCKER_CI_DIR/dockerd.log"
  return 1
}

stop_docker() {
  if [ -n "${DOCKERD_PID:-}" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 40); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
}
