#!/usr/bin/env bash
# Installs the system packages rightsfs needs to build, mount and be tested on
# Debian or Ubuntu. Idempotent: safe to run again.
set -euo pipefail
PKGS=(
  build-essential pkg-config     # C parts of dependencies (ring, sqlite)
  fuse3                          # fusermount3, /dev/fuse helper for the mount
  postgresql                     # the server's PostgreSQL store tests
  git sqlite3 vim-nox rsync tar python3   # real programs the mount tests drive
  emacs-nox perl sed libglib2.0-bin   # more saving programs (tests/fs_saves.rs: emacs, perl -i, sed -i, gio save)
  libreoffice-writer-nogui python3-uno   # LibreOffice's own saves, headless through UNO (tests/fs_saves.rs)
  fio gocryptfs                  # filesystem benchmarks (scripts/bench/fs.sh)
  nodejs                         # the web viewer's tests (node --test, WebCrypto)
  chromium                       # the web viewer's browser tests (headless, driven over a pipe)
  firefox-esr                    # the same browser tests in Firefox (headless, WebDriver BiDi)
  dbus gnome-keyring             # a private session bus and desktop keyring (tests/cli_keyring.rs)
  dbus-x11                       # the session bus gnome-keyring needs, without a systemd user session
  libsecret-tools                # secret-tool: what that keyring holds, seen from outside
)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install Rust from your distribution or rustup first" >&2
  exit 1
fi
# pjdfstest, the POSIX conformance suite tests/fs_posix.rs runs on real mounts.
PJDFSTEST_VERSION=0.2.2
if ! pjdfstest --version 2>/dev/null | grep -qx "pjdfstest $PJDFSTEST_VERSION"; then
  cargo install pjdfstest --version "$PJDFSTEST_VERSION" --locked
fi
