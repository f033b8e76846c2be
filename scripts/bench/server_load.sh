#!/usr/bin/env bash
# Licence-issuing throughput and latency of rights-server at N concurrent
# clients, on SQLite and on PostgreSQL (also with every licence wrapping its
# key afresh, and two replicas on one PostgreSQL), beside an axum hello-world and the
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

run() { # label, replicas, extra server args...
    local label=$1 replicas=$2; shift 2
    local data; data=$(mktemp -d)
    local pids=() urls=() i line
    for ((i = 0; i < replicas; i++)); do
        local fifo=$data/out$i; mkfifo "$fifo"
        "$SERVER" serve --data-dir "$data" --listen 127.0.0.1:0 --auth-per-minute 1000 "$@" >"$fifo" 2>"$data/log$i" &
        pids+=($!)
        read -r line <"$fifo"
        urls+=("${line#listening on }")
    done
    local joined; joined=$(IFS=,; echo "${urls[*]}")
    echo "== $label ($joined), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$LOAD" "$joined" "$data/outbox" "$CONC" "$SECS"
    kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
    rm -rf "$data"
}

echo "rights-server load, $(nproc) cores, profile $PROFILE, $(date -u +%Y-%m-%dT%H:%MZ)"
run sqlite 1
# Every licence pays its RSA public operation (no wrap kept between licences).
run "sqlite, fresh wraps" 1 --wrap-cache 0
if [ -z "${RIGHTSFS_TEST_POSTGRES_URL:-}" ]; then
    eval "$(scripts/ci/postgres.sh)"
fi
run postgresql 1 --database "$RIGHTSFS_TEST_POSTGRES_URL"
run "postgresql, fresh wraps" 1 --database "$RIGHTSFS_TEST_POSTGRES_URL" --wrap-cache 0
run "postgresql, two replicas" 2 --database "$RIGHTSFS_TEST_POSTGRES_URL"
