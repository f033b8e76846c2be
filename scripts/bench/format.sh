#!/usr/bin/env bash
# Benchmarks the protected-file format against raw AES-256-GCM and prints a
# table of throughputs. Extra arguments go to criterion, e.g.
#   scripts/bench/format.sh --measurement-time 3
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo bench --bench format -- "$@"

python3 - "${CARGO_TARGET_DIR:-target}/criterion" <<'PY'
import json, os, sys

root = sys.argv[1]
rows = {}
for group in ("file", "aes_gcm"):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        continue
    for name in sorted(os.listdir(gdir)):
        new = os.path.join(gdir, name, "new")
        try:
            with open(os.path.join(new, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(new, "estimates.json")) as f:
                est = json.load(f)
        except FileNotFoundError:
            continue
        nbytes = (bench.get("throughput") or {}).get("Bytes")
        if not nbytes:
            continue
        # criterion's headline figure: the slope of a linear fit when it has
        # one, else the mean
        e = est.get("slope") or est["mean"]
        ns = e["point_estimate"]
        lo = e["confidence_interval"]["lower_bound"]
        hi = e["confidence_interval"]["upper_bound"]
        # bytes per nanosecond is GB/s (10^9 bytes per second)
        rows[f"{group}/{name}"] = (nbytes / ns, nbytes / hi, nbytes / lo, ns)

if not rows:
    sys.exit("no criterion results under " + root)
print()
print(f"{'benchmark':<44} {'GB/s':>8} {'95% CI (GB/s)':>18} {'time/iter':>14}")
for k, (gbs, lo, hi, ns) in rows.items():
    t = f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} us"
    print(f"{k:<44} {gbs:>8.3f} {f'{lo:.3f}..{hi:.3f}':>18} {t:>14}")
seq, raw = rows.get("file/seq_read_1MiB"), rows.get("aes_gcm/open_4KiB")
if seq and raw:
    ratio = seq[0] / raw[0]
    verdict = "meets" if ratio >= 0.70 else "BELOW"
    print(f"\nsequential decrypt / raw aes-gcm open = {ratio * 100:.0f}% ({verdict} the 70% target)")
PY
