#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and shows the main job:
# builds rightsfs, starts a licensing server on loopback (mail goes to its
# outbox folder), signs up a demo user with the code from that mail,
# protects a sample file, reads it back, then mounts the folder, edits the
# file through the mount and unmounts. Leaves its folder for you to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --bins
BIN=$PWD/target/debug
DEMO=$(mktemp -d -t rightsfs-demo.XXXXXX)
export HOME=$DEMO/home XDG_CONFIG_HOME=$DEMO/home/config XDG_DATA_HOME=$DEMO/home/data XDG_CACHE_HOME=$DEMO/home/cache
export RIGHTS_PASSPHRASE="demo passphrase (a desktop keeps keys in its desktop keyring)"
mkdir -p "$HOME" "$DEMO/docs" "$DEMO/mnt"
SERVER_PID=
cleanup() {
  if mountpoint -q "$DEMO/mnt" 2>/dev/null; then "$BIN/rights" --keystore file unmount --force "$DEMO/mnt" || true; fi
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting rights-server on loopback (data in $DEMO/server)"
"$BIN/rights-server" serve --data-dir "$DEMO/server" --listen 127.0.0.1:0 > "$DEMO/server.out" 2> "$DEMO/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  ADDR=$(grep -o '127\.0\.0\.1:[0-9]\+' "$DEMO/server.out" "$DEMO/server.log" 2>/dev/null | head -1 | sed 's/^[^:]*://') || true
  [ -n "${ADDR:-}" ] && break
  sleep 0.1
done
[ -n "${ADDR:-}" ] || { echo "the server did not start; see $DEMO/server.log" >&2; exit 1; }
URL="http://$ADDR"
echo "   listening on $URL"

echo "== signing up demo@example.com (the code is read from the server's outbox)"
mkfifo "$DEMO/code"
"$BIN/rights" --keystore file signup demo@example.com --server "$URL" < "$DEMO/code" &
SIGNUP=$!
exec 3> "$DEMO/code"
CODE=
for _ in $(seq 100); do
  EML=$(ls "$DEMO/server/outbox/"*.eml 2>/dev/null | head -1) || true
  if [ -n "${EML:-}" ]; then CODE=$(grep -o '\b[0-9]\{8\}\b' "$EML" | head -1); fi
  [ -n "$CODE" ] && break
  sleep 0.1
done
echo "$CODE" >&3
exec 3>&-
wait "$SIGNUP"

echo "== protecting a sample file"
printf 'Quarterly numbers: 42\n' > "$DEMO/docs/report.txt"
"$BIN/rights" --keystore file protect "$DEMO/docs/report.txt"
ls -l "$DEMO/docs"
echo "== reading it back with rights cat"
"$BIN/rights" --keystore file cat "$DEMO/docs/report.txt.rights"
"$BIN/rights" --keystore file info "$DEMO/docs/report.txt.rights"

echo "== mounting $DEMO/docs at $DEMO/mnt"
"$BIN/rights" --keystore file mount "$DEMO/docs" "$DEMO/mnt" --daemon
ls -l "$DEMO/mnt"
echo "Edited through the mount" >> "$DEMO/mnt/report.txt"
printf 'a new file, protected at once\n' > "$DEMO/mnt/notes.txt"
cat "$DEMO/mnt/report.txt"
"$BIN/rights" --keystore file status
"$BIN/rights" --keystore file unmount "$DEMO/mnt"
echo "== on disk, only protected files:"
ls -l "$DEMO/docs"
"$BIN/rights" --keystore file cat "$DEMO/docs/notes.txt.rights"
echo
echo "Done. Everything is in $DEMO (server data, the user's folders, docs/)."
