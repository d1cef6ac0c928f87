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

start_postgres() {
  if [ -n "${WP_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  local bin
  if ! bin=$(find_pg_bin); then
    echo "PostgreSQL not found: installing Debian's postgresql package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(find_pg_bin)
  fi
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false postgres
  PG_DIR=$(mktemp -d /tmp/wp-ci-pg.XXXXXX)
  chown postgres "$PG_DIR"
  PG_PORT=${PG_PORT:-55432}
  runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
  export PG_BIN="$bin" PG_DIR PG_PORT
  export WP_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/postgres"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
