#!/usr/bin/env bash
# How long "shared with me" (GET /v1/content?role=shared, every page) takes
# when the registry holds many contents of other owners, on SQLite and on
# PostgreSQL. examples/shared_list.rs writes the contents straight into
# the server's database and times the listing.
# Usage: scripts/bench/shared_list.sh [CONTENTS] [SHARED] [ROUNDS]   # defaults: 100000 1000 5
# PROFILE=release for an optimised build (default: dev, whose dependencies
# are built with opt-level 2). PostgreSQL comes from scripts/ci/postgres.sh,
# in a database of its own (rightsfs_bench) that the run drops at the end
# so that the test database keeps its size; NO_POSTGRES=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONTENTS=${1:-100000}
SHARED=${2:-1000}
ROUNDS=${3:-5}
PROFILE=${PROFILE:-dev}
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")

cargo build --profile "$PROFILE" --bin rights-server --example shared_list >&2
SERVER=target/$DIR/rights-server
LIST=target/$DIR/examples/shared_list

run() { # label, database (empty: SQLite in the data folder)
    local label=$1 db=$2
    local data; data=$(mktemp -d)
    [ -n "$db" ] || db=$data/rights.db
    local fifo=$data/out; mkfifo "$fifo"
    "$SERVER" serve --data-dir "$data" --listen 127.0.0.1:0 --auth-per-minute 1000 --database "$db" \
        >"$fifo" 2>"$data/log" &
    local pid=$!
    local line; read -r line <"$fifo"
    local url=${line#listening on }
    echo "== $label ($url)"
    "$LIST" "$url" "$data/outbox" "$db" "$CONTENTS" "$SHARED" "$ROUNDS"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$data"
}

echo "shared listing, $(nproc) cores, profile $PROFILE, $(git rev-parse --short HEAD)"
run sqlite ""
[ -z "${NO_POSTGRES:-}" ] || exit 0
BENCH_DB=rightsfs_bench
eval "$(RIGHTSFS_PG_DB=$BENCH_DB scripts/ci/postgres.sh)"
drop() { runuser -u postgres -- dropdb --if-exists "$BENCH_DB" 2>/dev/null || sudo -u postgres dropdb --if-exists "$BENCH_DB"; }
trap drop EXIT
run postgresql "$RIGHTSFS_TEST_POSTGRES_URL"
