#!/usr/bin/env bash
# One round of file-system measurements on one folder, printed as lines
#   LABEL METRIC VALUE UNIT
# for scripts/bench/fs.sh, which runs it on every target in turn and
# tabulates the medians. Data phases use fio (one job, synchronous I/O, as
# an editor or a build tool would); metadata phases time Python's os calls
# over META_FILES small files. A phase that fails prints NA and the script
# exits non-zero at the end, so one broken target does not stop a run.
#
# Usage: scripts/bench/fsbench.sh DIR LABEL        (root: drops caches)
# Environment: SIZE_MB [512] sequential file size; RAND_SECS [20] length of
# each random phase; META_FILES [2000] files of the metadata phases.
set -uo pipefail
DIR=${1:?usage: fsbench.sh DIR LABEL}
LABEL=${2:?usage: fsbench.sh DIR LABEL}
SIZE_MB=${SIZE_MB:-512}
RAND_SECS=${RAND_SECS:-20}
META_FILES=${META_FILES:-2000}
WORK=$DIR/fsbench.$$
STATUS=0
START=$(date +%s.%N)

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
out() { echo "$LABEL $1 $2 $3"; }

# fio_job NAME RW BS [extra fio options...]: runs one job on $WORK/data and
# prints the JSON report's first job. fio reserves a file's space with
# fallocate before writing it unless told not to; in rightsfs reserving
# means writing encrypted zeros (docs/MOUNT.md), so the write would be
# timed twice. --fallocate=none, for every target alike, times the writes.
fio_job() {
  local name=$1 rw=$2 bs=$3; shift 3
  fio --name="$name" --filename="$WORK/data" --rw="$rw" --bs="$bs" --size="${SIZE_MB}M" \
    --ioengine=psync --numjobs=1 --fallocate=none --output-format=json "$@"
}

# fio_field JSON PART FIELD : bandwidth (MiB/s), iops, p50 or p99 (µs) of
# the read or write part of a fio JSON report.
fio_field() {
  python3 -c '
import json, sys
job = json.loads(sys.argv[1])["jobs"][0][sys.argv[2]]
f = sys.argv[3]
if f == "bw":
    print("%.1f" % (job["bw_bytes"] / 1048576))
elif f == "iops":
    print("%.0f" % job["iops"])
else:
    pct = job["clat_ns"]["percentile"]["50.000000" if f == "p50" else "99.000000"]
    print("%.1f" % (pct / 1000))
' "$1" "$2" "$3"
}

# phase METRIC... : runs the rest of the line; on failure prints NA for the
# metrics it would have given.
fail() { for m in "$@"; do out "$m" NA -; done; STATUS=1; }

mkdir -p "$WORK" || { fail seq_write_1m; exit 1; }

# ---- sequential -------------------------------------------------------------
if j=$(fio_job seqw write 1M --end_fsync=1 2>/dev/null); then
  out seq_write_1m "$(fio_field "$j" write bw)" MiB/s
else fail seq_write_1m; fi
drop_caches
if j=$(fio_job seqr read 1M 2>/dev/null); then
  out seq_read_cold_1m "$(fio_field "$j" read bw)" MiB/s
else fail seq_read_cold_1m; fi
if j=$(fio_job seqr read 1M 2>/dev/null); then
  out seq_read_warm_1m "$(fio_field "$j" read bw)" MiB/s
else fail seq_read_warm_1m; fi

# ---- random 4 KiB -------------------------------------------------------------
if j=$(fio_job randr randread 4k --time_based --runtime="$RAND_SECS" 2>/dev/null); then
  out randread_4k "$(fio_field "$j" read iops)" IOPS
  out randread_4k_p50 "$(fio_field "$j" read p50)" us
  out randread_4k_p99 "$(fio_field "$j" read p99)" us
else fail randread_4k randread_4k_p50 randread_4k_p99; fi
if j=$(fio_job randw randwrite 4k --time_based --runtime="$RAND_SECS" 2>/dev/null); then
  out randwrite_4k "$(fio_field "$j" write iops)" IOPS
  out randwrite_4k_p50 "$(fio_field "$j" write p50)" us
  out randwrite_4k_p99 "$(fio_field "$j" write p99)" us
else fail randwrite_4k randwrite_4k_p50 randwrite_4k_p99; fi
rm -f "$WORK/data"

# ---- metadata -------------------------------------------------------------------
# Each phase is timed on its own; the cold stat follows a cache drop, which
# a FUSE daemon sees as lookups it must answer again.
if ! python3 - "$WORK/meta" "$META_FILES" "$LABEL" <<'PY'
import os, subprocess, sys, time
d, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.mkdir(d)
names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
payload = b"x" * 100

def timed(metric, fn, count):
    t = time.perf_counter()
    fn()
    print(f"{label} {metric} {count / (time.perf_counter() - t):.0f} ops/s", flush=True)

def create():
    for p in names:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.close(fd)

def stat_all():
    for p in names:
        os.stat(p)

def readdir():
    for _ in range(20):
        with os.scandir(d) as it:
            for _ in it:
                pass

def read_all():
    for p in names:
        with open(p, "rb") as f:
            f.read()

def delete():
    for p in names:
        os.unlink(p)

timed("meta_create", create, n)
timed("meta_stat_warm", stat_all, n)
timed("meta_readdir", readdir, 20 * n)
timed("meta_read", read_all, n)
subprocess.run(["sync"], check=True)
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3")
timed("meta_stat_cold", stat_all, n)
timed("meta_delete", delete, n)
os.rmdir(d)
PY
then fail meta_create; fi

rm -rf "$WORK"
out bench_wall "$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$START" "$(date +%s.%N)")" s
exit $STATUS
