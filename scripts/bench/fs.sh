#!/usr/bin/env bash
# Benchmarks the rightsfs mount against its peers, measured in one run:
#   native     a plain folder on the same filesystem
#   plainfuse  examples/passthrough.rs: a plain fuser mirror, no crypto, with
#              the mount's kernel settings
#   gocryptfs  gocryptfs (from the distribution's package)
#   rightsfs   `rights mount --daemon`, with a licensing server on loopback
# All backing folders live in one work folder, so on one filesystem.
# Everything it runs is in this repository or the distribution.
#
# Each round runs scripts/bench/fsbench.sh on every target in turn
# (A B C D A B C D ...), so that the noise of a shared machine falls on all
# of them alike; the table shows the median of the rounds per metric and the
# ratios rightsfs/gocryptfs and rightsfs/plain FUSE. Then every FUSE daemon
# streams a large file (write, then read after dropping caches) while its
# peak RSS (VmHWM of /proc/PID/status, reset first through
# /proc/PID/clear_refs) is recorded; rightsfs streams through the daemon
# that served the rounds. Last, a big tree (TREE_DIRS folders of
# TREE_PER_DIR files of 100 bytes) is made through each FUSE target, every
# daemon is restarted, caches are dropped, and `find` then `du` walk it: a
# cold walk right after a fresh mount, with the peak RSS of each daemon;
# then once more through rightsfs with its index of header facts
# (SRC/.rightsfs/facts) deleted first, as if the files had been made
# elsewhere, which shows what the index saves.
#
# Usage: scripts/bench/fs.sh            (run as root: drop_caches, FUSE)
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  SIZE_MB [512]  RAND_SECS [20]  META_FILES [2000]
#   STREAM_MB [2048]     size of the streamed file for the RSS measurement
#   TREE_DIRS [100] TREE_PER_DIR [1000]  the big tree
#   TREE_WALKS [1]       cold walks of the big tree, each after restarting
#                        every daemon (the table shows each and the median)
#   TREE_NO_INDEX [1]    0 = skip the walk without the index of header facts
#   TREE_UNCAPPED [1]    0 = skip the walk with `--max-inodes 0` (no inode cap)
#   RIGHTS_MOUNT_ARGS [] more options for every `rights mount` (e.g. `--max-inodes 0`)
#   PHASES [rounds stream tree]  the phases to run (spaces or commas):
#                        rounds (fsbench.sh on every target), stream (peak
#                        RSS while STREAM_MB stream through), tree (the cold
#                        walk of the big tree)
#   BENCH_PARENT [target]  where the work folder is made (not a tmpfs!)
#   CARGO_TARGET_DIR [target]  where rightsfs is built
#   PROFILE [release]    cargo profile to build and run (`dev`: the debug
#                        build, enough for the memory figures, not for timing)
#   THREADS [4]          FUSE worker threads of every FUSE daemon
#   KEEP [0]             1 = keep the work folder (logs, raw results)
#   PLAIN_READDIRPLUS [0] 1 = the plain FUSE mirror answers listings with
#                        every entry's attributes, as rightsfs does
#                        (`readdirplus`): the floor for rightsfs's listings
#   BEFORE_RIGHTS []     another `rights` binary (an earlier commit's build):
#                        the big tree is also walked through a fresh mount
#                        of it, shown as "rightsfs before"
# Only the big tree, before and after: PHASES=tree BEFORE_RIGHTS=/path/to/rights scripts/bench/fs.sh
# The memory and cold-walk targets alone: PHASES=stream,tree TREE_WALKS=2 scripts/bench/fs.sh
# Quick run: ROUNDS=1 SIZE_MB=64 RAND_SECS=3 STREAM_MB=256 TREE_DIRS=10 scripts/bench/fs.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

ROUNDS=${ROUNDS:-3}
SIZE_MB=${SIZE_MB:-512}
RAND_SECS=${RAND_SECS:-20}
STREAM_MB=${STREAM_MB:-2048}
THREADS=${THREADS:-4}
KEEP=${KEEP:-0}
TREE_DIRS=${TREE_DIRS:-100}
TREE_PER_DIR=${TREE_PER_DIR:-1000}
TREE_WALKS=${TREE_WALKS:-1}
TREE_NO_INDEX=${TREE_NO_INDEX:-1}
TREE_UNCAPPED=${TREE_UNCAPPED:-1}
PHASES=" ${PHASES:-rounds stream tree} "
PHASES=${PHASES//,/ }
FSBENCH=$REPO/scripts/bench/fsbench.sh
BENCH_PARENT=${BENCH_PARENT:-$REPO/target}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
PROFILE=${PROFILE:-release}
export SIZE_MB RAND_SECS

# ---- checks -------------------------------------------------------------------
die() { echo "fs.sh: $*" >&2; exit 2; }
# phase NAME : whether PHASES includes NAME.
phase() { [[ $PHASES == *" $1 "* ]]; }
for p in $PHASES; do
  case $p in rounds | stream | tree) ;; *) die "unknown phase '$p' in PHASES (rounds, stream, tree)" ;; esac
done
phase rounds || ROUNDS=0
phase tree || TREE_DIRS=0
[ "$(id -u)" = 0 ] || die "run as root (fsbench drops caches; FUSE mounts)"
for t in fio gocryptfs fusermount3 python3 dd; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install -y fio gocryptfs fuse3 python3)"
done

# ---- build --------------------------------------------------------------------
echo "== building rightsfs and the plain FUSE mirror ($PROFILE) into $TARGET_DIR" >&2
CARGO_TARGET_DIR=$TARGET_DIR cargo build --profile "$PROFILE" --bins --example passthrough >&2
case $PROFILE in dev) BIN=$TARGET_DIR/debug ;; *) BIN=$TARGET_DIR/$PROFILE ;; esac
MIRROR=$BIN/examples/passthrough

# ---- work folder and cleanup ----------------------------------------------------
mkdir -p "$BENCH_PARENT"
W=$(mktemp -d "$BENCH_PARENT/fsbench.XXXXXX")
W=$(cd "$W" && pwd -P)
RES=$W/results.txt
: > "$RES"
SERVER_PID= MIRROR_PID= GOCRYPT_PID= RIGHTS_PID=

# The rights client of the bench user: its own home, file keystore.
RIGHTS_BIN=$BIN/rights
rights() {
  HOME=$W/home XDG_CONFIG_HOME=$W/home/config XDG_DATA_HOME=$W/home/data XDG_CACHE_HOME=$W/home/cache \
    RIGHTS_PASSPHRASE="bench passphrase" "$RIGHTS_BIN" --keystore file "$@"
}

cleanup() {
  set +e
  if mountpoint -q "$W/mnt/rightsfs" 2>/dev/null; then
    rights unmount "$W/mnt/rightsfs" >/dev/null 2>&1 || rights unmount --force "$W/mnt/rightsfs" >/dev/null 2>&1
  fi
  for m in plainfuse gocryptfs; do
    mountpoint -q "$W/mnt/$m" 2>/dev/null && { fusermount3 -u "$W/mnt/$m" 2>/dev/null || fusermount3 -uz "$W/mnt/$m"; }
  done
  # Only the processes this script started, by their id.
  for p in $MIRROR_PID $GOCRYPT_PID $RIGHTS_PID $SERVER_PID; do
    kill "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$KEEP" = 1 ]; then echo "fs.sh: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Targets' folders apart on ext4: the folders below $W and $W/src are spread
# over block groups by the allocator when these carry the "top of a
# hierarchy" flag (chattr +T). Without a journal, ext4 allocates a new inode
# only past the inodes of its group deleted in the last minute (six while
# their table block is dirty), checking each one; in one group, a target's
# creations would walk past the previous target's 2,000 deletions, which
# charges the order of the targets, not the file systems. (New files go to
# the first group of their folder's flex group of 16, so two targets may
# still share one.) Elsewhere (other file systems, ext4 with a journal)
# this is a no-op.
mkdir -p "$W/src"
chattr +T "$W" "$W/src" 2>/dev/null || true
mkdir -p "$W/home" "$W/native" "$W/src/plainfuse" "$W/src/gocryptfs" "$W/src/rightsfs" \
  "$W/mnt/plainfuse" "$W/mnt/gocryptfs" "$W/mnt/rightsfs"

# wait_mount MNT PID : until MNT is a mount point, or PID died (10 s at most)
wait_mount() {
  for _ in $(seq 200); do
    mountpoint -q "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# ---- plain FUSE -------------------------------------------------------------------
# Each FUSE target has a start function (which sets its *_PID) and an
# unmount; the big-tree phase restarts them all.
start_plainfuse() {
  local plus=
  [ "${PLAIN_READDIRPLUS:-0}" = 1 ] && plus=plus
  # shellcheck disable=SC2086 # $plus is one word or none
  "$MIRROR" "$W/src/plainfuse" "$W/mnt/plainfuse" "$THREADS" $plus >> "$W/plainfuse.log" 2>&1 &
  MIRROR_PID=$!
  wait_mount "$W/mnt/plainfuse" "$MIRROR_PID" || die "the plain FUSE mirror did not mount; see $W/plainfuse.log"
}
start_gocryptfs() {
  gocryptfs -q -fg -passfile "$W/gocryptfs.pass" "$W/src/gocryptfs" "$W/mnt/gocryptfs" \
    >> "$W/gocryptfs.log" 2>&1 &
  GOCRYPT_PID=$!
  wait_mount "$W/mnt/gocryptfs" "$GOCRYPT_PID" || die "gocryptfs did not mount; see $W/gocryptfs.log"
}
start_rightsfs() {
  local out
  # shellcheck disable=SC2086 # RIGHTS_MOUNT_ARGS is a list of options
  out=$(rights mount "$W/src/rightsfs" "$W/mnt/rightsfs" --daemon --threads "$THREADS" ${RIGHTS_MOUNT_ARGS:-})
  RIGHTS_PID=$(grep -o 'daemon pid [0-9]\+' <<< "$out" | grep -o '[0-9]\+$') || die "no daemon pid in: $out"
}
# stop TARGET PID : unmount and wait for the daemon to end.
stop() {
  if [ "$1" = rightsfs ]; then rights unmount "$W/mnt/$1" >/dev/null; else fusermount3 -u "$W/mnt/$1"; fi
  while kill -0 "$2" 2>/dev/null; do sleep 0.05; done
}

TARGETS="native plainfuse"
start_plainfuse

# ---- gocryptfs (foreground mode, so that $! is the daemon) -----------------------
echo "bench passphrase" > "$W/gocryptfs.pass"
gocryptfs -q -init -scryptn 10 -passfile "$W/gocryptfs.pass" "$W/src/gocryptfs" >&2
start_gocryptfs
TARGETS="$TARGETS gocryptfs"

# ---- rightsfs: server on loopback, sign-up, mount (as scripts/demo.sh does) -------
"$BIN/rights-server" serve --data-dir "$W/server" --listen 127.0.0.1:0 > "$W/server.out" 2> "$W/server.log" &
SERVER_PID=$!
ADDR=
for _ in $(seq 100); do
  ADDR=$(grep -o '127\.0\.0\.1:[0-9]\+' "$W/server.out" "$W/server.log" 2>/dev/null | head -1 | sed 's/^[^:]*://') || true
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || die "rights-server did not start; see $W/server.log"
# Sign-up reads the e-mailed code on stdin: hand it over through a FIFO once
# it shows up in the server's outbox.
mkfifo "$W/code"
rights signup bench@example.com --server "http://$ADDR" < "$W/code" > "$W/signup.log" 2>&1 &
SIGNUP=$!
exec 3> "$W/code"
CODE=
for _ in $(seq 100); do
  EML=$(ls "$W/server/outbox/"*.eml 2>/dev/null | head -1) || true
  [ -n "${EML:-}" ] && CODE=$(grep -o '\b[0-9]\{8\}\b' "$EML" | head -1)
  [ -n "$CODE" ] && break
  sleep 0.1
done
echo "$CODE" >&3
exec 3>&-
wait "$SIGNUP" || die "sign-up failed; see $W/signup.log"
start_rightsfs
TARGETS="$TARGETS rightsfs"

# ---- interleaved rounds -------------------------------------------------------------
echo "# $(date -u +%Y-%m-%dT%H:%MZ) kernel $(uname -r), $(nproc) cores, $(fio --version)," \
  "gocryptfs $(gocryptfs -version 2>/dev/null | head -1 | cut -d' ' -f2 | tr -d ';'), rightsfs $(git rev-parse --short HEAD 2>/dev/null)," \
  "PROFILE=$PROFILE PHASES='${PHASES# }' ROUNDS=$ROUNDS SIZE_MB=$SIZE_MB RAND_SECS=$RAND_SECS THREADS=$THREADS" \
  "STREAM_MB=$STREAM_MB TREE=${TREE_DIRS}x$TREE_PER_DIR TREE_WALKS=$TREE_WALKS PLAIN_READDIRPLUS=${PLAIN_READDIRPLUS:-0}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    dir=$W/mnt/$t; [ "$t" = native ] && dir=$W/native
    echo "== round $r/$ROUNDS: $t (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # A failed phase prints NA and a non-zero status: keep going.
    bash "$FSBENCH" "$dir" "$t" 2> "$W/fsbench-$t-$r.err" | sed "s/\$/ $r/" >> "$RES" \
      || echo "   fsbench reported a failure on $t; see $W/fsbench-$t-$r.err" >&2
  done
done

# ---- streaming and peak RSS of the FUSE daemons -------------------------------------
# stream NAME PID : write STREAM_MB MiB (fsync included), drop caches, read it
# back; peak RSS of PID over just this, in KiB.
stream() {
  local name=$1 pid=$2 f=$W/mnt/$1/stream.dat w rd hwm
  echo 5 > "/proc/$pid/clear_refs"           # resets VmHWM to the current RSS
  w=$(dd if=/dev/zero of="$f" bs=1M count="$STREAM_MB" conv=fsync 2>&1 | awk '/copied/{print $(NF-1), $NF}')
  sync; echo 3 > /proc/sys/vm/drop_caches
  rd=$(dd if="$f" of=/dev/null bs=1M 2>&1 | awk '/copied/{print $(NF-1), $NF}')
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  rm -f "$f"
  echo "$name stream_peak_rss $hwm KiB write=${w// /_} read=${rd// /_}"
}
# rightsfs streams through the daemon that served the rounds: what a
# long-running mount holds, not a fresh one (without the rounds, a fresh
# one). Its resident memory before streaming is noted too.
: > "$W/stream.txt"
if phase stream; then
  echo "rightsfs after_rounds_rss $(awk '/^VmRSS/{print $2}' "/proc/$RIGHTS_PID/status") KiB hwm=$(awk '/^VmHWM/{print $2}' "/proc/$RIGHTS_PID/status") rounds=$ROUNDS" > "$W/stream.txt"
  echo "== streaming ${STREAM_MB} MiB through each FUSE mount" >&2
  {
    stream plainfuse "$MIRROR_PID"
    stream gocryptfs "$GOCRYPT_PID"
    stream rightsfs "$RIGHTS_PID"
  } >> "$W/stream.txt"
fi

# ---- big tree, cold, right after a fresh mount ------------------------------------
: > "$W/tree.txt"
if [ "$TREE_DIRS" -gt 0 ]; then
  echo "== big tree: $TREE_DIRS folders x $TREE_PER_DIR files through every target" >&2
  for t in native plainfuse gocryptfs rightsfs; do
    dir=$W/mnt/$t/tree; [ "$t" = native ] && dir=$W/native/tree
    python3 - "$dir" "$TREE_DIRS" "$TREE_PER_DIR" <<'PY'
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.mkdir(root)
for d in range(dirs):
    p = os.path.join(root, f"d{d:03d}")
    os.mkdir(p)
    for i in range(per):
        fd = os.open(os.path.join(p, f"f{i:04d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"y" * 100)
        os.close(fd)
PY
  done
  walk() { # walk TARGET DIR PID
    local t0 t1 t2
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=$(date +%s.%N); find "$2" > /dev/null; t1=$(date +%s.%N); du -s "$2" > /dev/null; t2=$(date +%s.%N)
    python3 -c "import sys; a, b, c = map(float, sys.argv[2:]); print(f'{sys.argv[1]} tree_find {b - a:.2f} s'); print(f'{sys.argv[1]} tree_du {c - b:.2f} s')" "$1" "$t0" "$t1" "$t2"
    [ -n "$3" ] && echo "$1 tree_rss $(awk '/^VmHWM/{print $2}' "/proc/$3/status") KiB"
    return 0
  }
  for n in $(seq "$TREE_WALKS"); do
    echo "== cold walk $n/$TREE_WALKS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # Fresh daemons: nothing of the tree in any daemon's memory.
    stop plainfuse "$MIRROR_PID"; start_plainfuse
    stop gocryptfs "$GOCRYPT_PID"; start_gocryptfs
    stop rightsfs "$RIGHTS_PID"; start_rightsfs
    {
      walk native "$W/native/tree" ""
      walk plainfuse "$W/mnt/plainfuse/tree" "$MIRROR_PID"
      walk gocryptfs "$W/mnt/gocryptfs/tree" "$GOCRYPT_PID"
      walk rightsfs "$W/mnt/rightsfs/tree" "$RIGHTS_PID"
    } >> "$W/tree.txt"
    if [ "$TREE_NO_INDEX" = 1 ]; then
      # The index is written when the daemon ends: delete it in between.
      # This walk learns it again for the next.
      stop rightsfs "$RIGHTS_PID"; rm -rf "$W/src/rightsfs/.rightsfs/facts"; start_rightsfs
      walk rightsfs-noindex "$W/mnt/rightsfs/tree" "$RIGHTS_PID" >> "$W/tree.txt"
    fi
    if [ "$TREE_UNCAPPED" = 1 ]; then
      stop rightsfs "$RIGHTS_PID"; RIGHTS_MOUNT_ARGS="--max-inodes 0" start_rightsfs
      walk rightsfs-uncapped "$W/mnt/rightsfs/tree" "$RIGHTS_PID" >> "$W/tree.txt"
      stop rightsfs "$RIGHTS_PID"; start_rightsfs
    fi
    if [ -n "${BEFORE_RIGHTS:-}" ]; then
      stop rightsfs "$RIGHTS_PID"; RIGHTS_BIN=$BEFORE_RIGHTS; start_rightsfs
      walk rightsfs-before "$W/mnt/rightsfs/tree" "$RIGHTS_PID" >> "$W/tree.txt"
      stop rightsfs "$RIGHTS_PID"; RIGHTS_BIN=$BIN/rights; start_rightsfs
    fi
  done
fi

# ---- table -------------------------------------------------------------------------
python3 - "$RES" "$W/stream.txt" "$STREAM_MB" "$TARGETS" "$W/tree.txt" "$TREE_DIRS x $TREE_PER_DIR" <<'PY'
import statistics, sys
res, stream, stream_mb, targets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
tree, tree_shape = sys.argv[5], sys.argv[6]
vals, units, order = {}, {}, []
for line in open(res):
    p = line.split()
    if len(p) < 4 or p[0].startswith("#"):
        continue
    label, metric, value, unit = p[:4]
    if metric not in units:
        order.append(metric)
    units[metric] = unit
    if value != "NA":
        vals.setdefault((label, metric), []).append(float(value))

def med(t, m):
    v = vals.get((t, m))
    return statistics.median(v) if v else None

def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"

names = {"native": "native", "plainfuse": "plain FUSE", "gocryptfs": "gocryptfs", "rightsfs": "rightsfs"}
lower_better = lambda m, u: u in ("us", "s")
met, missed = [], []
if order:
    print()
    print("| metric | unit | " + " | ".join(names[t] for t in targets) + " | rightsfs/gocryptfs | rightsfs/plain FUSE | targets |")
    print("|---" * (len(targets) + 5) + "|")
for m in order:
    u = units[m]
    row = [med(t, m) for t in targets]
    r, g, f = med("rightsfs", m), med("gocryptfs", m), med("plainfuse", m)
    rg = r / g if r and g else None
    rf = r / f if r and f else None
    verdict = ""
    # Targets: ≥ 1.2x gocryptfs and ≥ 0.9x the plain FUSE mirror (for
    # latencies, at most 1/1.2 and 1.11x of theirs).
    if m != "bench_wall" and r is not None:
        parts = []
        for peer, ratio_, need in (("gocryptfs", rg, 1.2), ("plain FUSE", rf, 0.9)):
            if ratio_ is None:
                continue
            ok = ratio_ <= 1 / need if lower_better(m, u) else ratio_ >= need
            parts.append(f"{need}x {peer}: " + ("met" if ok else "MISSED"))
            (met if ok else missed).append(f"{m} vs {need}x {peer}")
        verdict = "; ".join(parts)
    unit = u + (" (lower is better)" if lower_better(m, u) else "")
    ratio = lambda x: "-" if x is None else f"{x:.2f}"
    print(f"| {m} | {unit} | " + " | ".join(fmt(x) for x in row) + f" | {ratio(rg)} | {ratio(rf)} | {verdict} |")

stream_lines = [line.split() for line in open(stream)]
if stream_lines:
    print()
    print(f"Streaming {stream_mb} MiB through each mount (dd bs=1M, write with conv=fsync, read after drop_caches):")
    print()
    print("| daemon | peak RSS (MiB) | write | read |")
    print("|---|---|---|---|")
for p in stream_lines:
    if p[1] == "stream_peak_rss":
        kv = dict(x.split("=", 1) for x in p[4:])
        print(f"| {names.get(p[0], p[0])} | {int(p[2]) / 1024:.1f} | {kv['write'].replace('_', ' ')} | {kv['read'].replace('_', ' ')} |")
        if p[0] == "rightsfs":
            ok = int(p[2]) < 32 * 1024
            (met if ok else missed).append("daemon peak RSS < 32 MiB while streaming")
    elif p[1] == "after_rounds_rss":
        kv = dict(x.split("=", 1) for x in p[4:])
        which = "daemon of the rounds" if kv["rounds"] != "0" else "fresh daemon"
        print(f"| (rightsfs {which}, before streaming) | RSS {int(p[2]) / 1024:.1f}, peak {int(kv['hwm']) / 1024:.1f} | | |")
tv = {}
for line in open(tree):
    p = line.split()
    tv.setdefault((p[0], p[1]), []).append(float(p[2]))
if tv:
    print()
    print(f"A tree of {tree_shape} files of 100 bytes, walked after fresh mounts and drop_caches (`find`, then `du -s`;")
    print("median of the walks, each walk in brackets; RSS: the highest):")
    print()
    print("| target | find (s) | du (s) | find + du (s) | daemon peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    names["rightsfs-noindex"] = "rightsfs, index of header facts deleted"
    names["rightsfs-before"] = "rightsfs before"
    names["rightsfs-uncapped"] = "rightsfs, `--max-inodes 0` (no cap)"
    walked = lambda t: [a + b for a, b in zip(tv[(t, "tree_find")], tv[(t, "tree_du")])]
    each = lambda v: f"{statistics.median(v):.2f}" + (" (" + ", ".join(f"{x:.2f}" for x in v) + ")" if len(v) > 1 else "")
    for t in targets + [t for t in ("rightsfs-noindex", "rightsfs-uncapped", "rightsfs-before") if (t, "tree_find") in tv]:
        if (t, "tree_find") not in tv:
            continue
        rss = tv.get((t, "tree_rss"))
        print(f"| {names[t]} | {each(tv[(t, 'tree_find')])} | {each(tv[(t, 'tree_du')])} | {each(walked(t))} | "
              + ("-" if rss is None else f"{max(rss) / 1024:.1f}") + " |")
    if ("rightsfs", "tree_find") in tv and ("gocryptfs", "tree_find") in tv:
        ok = statistics.median(walked("rightsfs")) <= statistics.median(walked("gocryptfs"))
        (met if ok else missed).append("cold big-tree walk ≤ gocryptfs")
        ok = max(tv[("rightsfs", "tree_rss")]) < 32 * 1024
        (met if ok else missed).append("daemon peak RSS < 32 MiB after the cold big-tree walk")
print()
print(f"Targets met ({len(met)}): " + ", ".join(met))
print(f"Targets MISSED ({len(missed)}): " + (", ".join(missed) if missed else "none"))
PY
echo "# raw results: $RES (kept only with KEEP=1); load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
