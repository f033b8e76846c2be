#!/usr/bin/env bash
# Licence-issuing throughput and latency of rights-server at N concurrent
# clients, on SQLite and on PostgreSQL, beside an axum hello-world and the
# RSA-2048 public-operation rate measured in the same run.
# Usage: scripts/bench/server_load.sh [CONCURRENCY] [SECONDS]
# PROFILE=release for an optimised build (default: dev, whose dependencies
# are built with opt-level 2). PostgreSQL comes from scripts/ci/postgres.sh
# unless RIGHTSFS_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${1:-64}
SECS=${2:-10}
PROFILE=${PROFILE:-dev}
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")

cargo build --profile "$PROFILE" --bin rights-server --example server_load >&2
SERVER=target/$DIR/rights-server
LOAD=target/$DIR/examples/server_load

run() { # label, extra server args...
    local label=$1; shift
    local data; data=$(mktemp -d)
    local fifo=$data/out; mkfifo "$fifo"
    "$SERVER" serve --data-dir "$data" --listen 127.0.0.1:0 --auth-per-minute 1000 "$@" >"$fifo" 2>"$data/log" &
    local pid=$!
    local line; read -r line <"$fifo"
    local url=${line#listening on }
    echo "== $label ($url)"
    "$LOAD" "$url" "$data/outbox" "$CONC" "$SECS"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$data"
}

echo "rights-server load, $(nproc) cores, profile $PROFILE, $(date -u +%Y-%m-%dT%H:%MZ)"
run sqlite
if [ -z "${RIGHTSFS_TEST_POSTGRES_URL:-}" ]; then
    eval "$(scripts/ci/postgres.sh)"
fi
run postgresql --database "$RIGHTSFS_TEST_POSTGRES_URL"
