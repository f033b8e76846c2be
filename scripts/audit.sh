#!/usr/bin/env bash
# Checks the dependencies against deny.toml with cargo-deny: RustSec
# advisories (vulnerable, unsound, unmaintained, yanked), licences, banned
# crates and sources. The advisory database comes from the network, which
# CI and the test machines do not have: when cargo-deny or a database is
# missing, the check is skipped with a message (exit 0) instead of failing.
#   scripts/audit.sh            use a local database, fetch one if none is there
#   RIGHTS_AUDIT_OFFLINE=1 ...  never fetch
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "audit: SKIPPED: cargo-deny is not installed (cargo install --locked cargo-deny)"
  exit 0
fi

# cargo-deny reads the metadata of every platform's crates, Windows ones
# included, which a Linux build never downloads: fetch them first (from the
# registry, which the test machines do reach) so that --offline finds them.
cargo fetch --quiet

# A database is a git checkout under advisory-dbs; a lone lock file left by a
# failed fetch is not one.
db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
have_db() { [ -n "$(find "$db" -mindepth 2 -maxdepth 2 -name .git 2>/dev/null)" ]; }
if ! have_db; then
  if [ -n "${RIGHTS_AUDIT_OFFLINE:-}" ] || ! timeout 120 cargo deny fetch db >/dev/null 2>&1; then
    echo "audit: advisories SKIPPED: no advisory database in $db and none could be fetched (offline?)"
    echo "audit: checking licences, bans and sources only"
    exec cargo deny --offline check licenses bans sources
  fi
fi
# The database is fetched above or not at all: --offline keeps the check
# itself from reaching the network.
exec cargo deny --offline check
