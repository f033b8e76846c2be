#!/usr/bin/env bash
# Where the time of a `stat` after `drop_caches` goes, on mounted folders.
#
# For each folder given (mounted FUSE file systems, e.g. a rightsfs mount
# and a gocryptfs mount), in turn for ROUNDS rounds: create N files of 1 KiB,
# read each once, sync, then, with the kernel's FUSE tracepoints recorded
# (perf, fuse:fuse_request_send and fuse:fuse_request_end), drop caches and
# stat every file. It prints, per folder and round:
#   files/s   the timed stats, as scripts/bench/fs.sh's meta_stat_cold;
#   lookup    request sent by the kernel -> answer written by the daemon
#             (the daemon's wake-up and its work), p10/p50/p90/p99 in µs;
#   gap       answer -> the client's next request (the client's wake-up and
#             its own part of the next stat), p50/p90 in µs;
#   same cpu  share of requests answered on the CPU that sent them.
# A daemon's own work shows in the lookup p10; the rest of both columns is
# scheduling: how soon a sleeping thread runs again.
#
# Usage: scripts/bench/lookups.sh DIR [DIR ...]     (root: drop_caches, perf)
# Knobs: ROUNDS [3]  N [2000]
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "lookups.sh: run as root (drop_caches, tracepoints)" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: lookups.sh DIR [DIR ...]" >&2; exit 2; }
command -v perf >/dev/null || { echo "lookups.sh: perf not found (apt-get install -y linux-perf)" >&2; exit 2; }
perf list tracepoint 2>/dev/null | grep 'fuse:fuse_request_send' >/dev/null \
  || { echo "lookups.sh: this kernel has no fuse tracepoints (Linux 6.13 or later; tracefs mounted)" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
N=${N:-2000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for r in $(seq "$ROUNDS"); do
  for dir in "$@"; do
    python3 - "$dir/lookups.$$" "$N" "$TMP/trace.data" <<'PY' > "$TMP/rate"
import os, subprocess, sys, time
d, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d)
data = os.urandom(1024)
names = [os.path.join(d, "f%05d.txt" % i) for i in range(n)]
for p in names:
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
for p in names:
    fd = os.open(p, os.O_RDONLY)
    os.read(fd, 1025)
    os.close(fd)
os.sync()
rec = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "fuse:fuse_request_send",
                        "-e", "fuse:fuse_request_end", "-o", out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.0)  # perf's start-up, out of the timed part
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3\n")
t = time.perf_counter()
for p in names:
    os.stat(p)
dt = time.perf_counter() - t
rec.send_signal(2)
rec.wait()
print("%d %.0f" % (os.getpid(), n / dt))
for p in names:
    os.unlink(p)
os.rmdir(d)
PY
    perf script -i "$TMP/trace.data" 2>/dev/null > "$TMP/trace.txt"
    python3 - "$TMP/trace.txt" $(cat "$TMP/rate") "$dir" "$r" <<'PY'
import re, sys
path, pid, rate, label, rnd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ev = re.compile(r"\s(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+fuse:fuse_request_(send|end): connection (\d+) req (\d+)")
sent, lat, gap, same, last = {}, [], [], 0, None
for line in open(path):
    m = ev.search(line)
    if not m:
        continue
    tid, cpu, t, kind, conn, req = m.groups()
    key = (conn, req)
    if kind == "send":
        if tid != pid:
            continue
        sent[key] = (float(t), cpu)
        if last is not None:
            gap.append(float(t) - last)
    elif key in sent:
        t0, c0 = sent.pop(key)
        lat.append(float(t) - t0)
        same += c0 == cpu
        last = float(t)
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))] * 1e6 if v else float("nan")
print("%-40s round %s  %7s files/s  lookup p10/p50/p90/p99 %4.0f/%4.0f/%4.0f/%5.0f us  "
      "gap p50/p90 %4.0f/%4.0f us  same cpu %3.0f%%  (%d requests)" % (
          label[-40:], rnd, rate, pct(lat, .1), pct(lat, .5), pct(lat, .9), pct(lat, .99),
          pct(gap, .5), pct(gap, .9), 100.0 * same / max(1, len(lat)), len(lat)))
PY
  done
done
