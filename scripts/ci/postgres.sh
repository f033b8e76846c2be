#!/usr/bin/env bash
# Ensures a PostgreSQL server runs locally with a role and database for the
# store tests, then prints exactly one line on stdout:
#   export RIGHTSFS_TEST_POSTGRES_URL=postgres://...
# Everything else goes to stderr. Safe to run again: it reuses what exists.
# Usage: eval "$(scripts/ci/postgres.sh)"
set -euo pipefail

ROLE=${RIGHTSFS_PG_ROLE:-rightsfs}
DB=${RIGHTSFS_PG_DB:-rightsfs_test}
PASS=${RIGHTSFS_PG_PASSWORD:-rightsfs-test}
PORT=${RIGHTSFS_PG_PORT:-5432}

log() { echo "postgres.sh: $*" >&2; }

as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        "$@"
    elif [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -u postgres -- "$@"
    fi
}

ensure_installed() {
    if command -v pg_ctlcluster >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        return
    fi
    log "installing postgresql"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
}

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

ready() {
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1
}

ensure_running() {
    if ready; then
        log "a server already answers on port $PORT"
        return
    fi
    if command -v pg_lsclusters >/dev/null 2>&1; then
        local line
        line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '$3 == p {print $1, $2; exit}')
        if [ -z "$line" ]; then
            local ver
            ver=$(basename "$(dirname "$(pg_bin)")")
            log "creating cluster $ver/main"
            pg_createcluster "$ver" main -p "$PORT" >&2
            line="$ver main"
        fi
        log "starting cluster $line"
        # shellcheck disable=SC2086
        pg_ctlcluster $line start >&2 || service postgresql start >&2 || true
    fi
    if ! ready; then
        # No Debian tooling (or it failed): a private cluster in a temp dir.
        local dir=${RIGHTSFS_PG_DIR:-/tmp/rightsfs-pg}
        if [ ! -f "$dir/PG_VERSION" ]; then
            log "initdb in $dir"
            mkdir -p "$dir"
            chown postgres "$dir" 2>/dev/null || true
            as_postgres "$(pg_bin)/initdb" -D "$dir" -A scram-sha-256 --pwfile=<(echo postgres) -U postgres >&2
        fi
        log "pg_ctl start in $dir"
        as_postgres "$(pg_bin)/pg_ctl" -D "$dir" -o "-p $PORT -k /tmp" -l "$dir/log" start >&2
    fi
    for _ in $(seq 1 60); do
        ready && return
        sleep 0.5
    done
    log "PostgreSQL did not become ready on port $PORT"
    exit 1
}

psql_admin() {
    as_postgres psql -v ON_ERROR_STOP=1 -qtA -p "$PORT" "$@"
}

ensure_role_and_db() {
    if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" = 1 ]; then
        psql_admin -c "ALTER ROLE \"$ROLE\" WITH LOGIN PASSWORD '$PASS'" >&2
    else
        log "creating role $ROLE"
        psql_admin -c "CREATE ROLE \"$ROLE\" WITH LOGIN PASSWORD '$PASS'" >&2
    fi
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
        log "creating database $DB"
        psql_admin -c "CREATE DATABASE \"$DB\" OWNER \"$ROLE\"" >&2
    fi
}

ensure_installed
ensure_running
ensure_role_and_db
echo "export RIGHTSFS_TEST_POSTGRES_URL=postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
