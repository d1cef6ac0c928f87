# Sourced by .ci/run: start a throwaway PostgreSQL cluster on 127.0.0.1 and export WP_TEST_POSTGRES_URL.
# initdb refuses to run as root, so the cluster belongs to a `postgres` OS user.

find_pg_bin() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Run a PostgreSQL binary as the cluster's owner: the `postgres` user when we are root, else ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ -n "${WP_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  local bin
  if ! bin=$(find_pg_bin); then
    echo "PostgreSQL not found: installing Debian's postgresql package"
    if [ "$(id -u)" != 0 ]; then echo "PostgreSQL is missing and only root can install it (apt-get install postgresql)"; return 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(find_pg_bin)
  fi
  PG_DIR=$(mktemp -d /tmp/wp-ci-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false postgres
    chown postgres "$PG_DIR"
  fi
  PG_PORT=${PG_PORT:-$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
  as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
  export PG_BIN="$bin" PG_DIR PG_PORT
  export WP_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/postgres"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
