#!/usr/bin/env bash
# Runs the whole rightsfs test suite: formatting, lints, then every test
# (unit, property, integration over real HTTP, SMTP, PostgreSQL and FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -z "${RIGHTSFS_TEST_POSTGRES_URL:-}" ] && [ -f scripts/ci/postgres.sh ]; then
  eval "$(bash scripts/ci/postgres.sh)"
fi
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# Dependency advisories and licences (skips, saying so, without cargo-deny or its database).
bash scripts/audit.sh
# The codec alone (feature `format`) must build without the server, client and mount crates.
cargo check --no-default-features --features format --lib --test format_vectors --bench format
cargo test --all-targets
# The web viewer's format reader against the same vectors (WebCrypto in Node).
node --test web/test/
