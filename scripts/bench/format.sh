#!/usr/bin/env bash
# Benchmarks the protected-file format against raw AES-256-GCM, and what its
# signatures and sealed grants cost per protect, open and save, and prints a
# table of throughputs and one of operations. Extra arguments go to
# criterion, e.g.
#   scripts/bench/format.sh --measurement-time 3
# BENCH=signing (or format) runs only one of the two benchmarks.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The codec alone: the server, client and mount are not built.
benches=()
for b in ${BENCH:-format signing}; do benches+=(--bench "$b"); done
cargo bench --no-default-features --features format "${benches[@]}" -- "$@"

python3 - "${CARGO_TARGET_DIR:-target}/criterion" <<'PY'
import json, os, sys

root = sys.argv[1]


def results(group):
    """(name, throughput bytes or None, ns, ns low, ns high) of each
    benchmark of `group` that has results."""
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        return
    for name in sorted(os.listdir(gdir)):
        new = os.path.join(gdir, name, "new")
        try:
            with open(os.path.join(new, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(new, "estimates.json")) as f:
                est = json.load(f)
        except FileNotFoundError:
            continue
        # criterion's headline figure: the slope of a linear fit when it has
        # one, else the mean
        e = est.get("slope") or est["mean"]
        ci = e["confidence_interval"]
        nbytes = (bench.get("throughput") or {}).get("Bytes")
        yield bench.get("function_id", name), nbytes, e["point_estimate"], ci["lower_bound"], ci["upper_bound"]


rows = {}
for group in ("file", "aes_gcm"):
    for name, nbytes, ns, lo, hi in results(group):
        if nbytes:
            # bytes per nanosecond is GB/s (10^9 bytes per second)
            rows[f"{group}/{name}"] = (nbytes / ns, nbytes / hi, nbytes / lo, ns)

ops = {name: (ns, lo, hi) for name, _, ns, lo, hi in results("signing")}
if ops:
    print()
    print(f"{'signing/...':<44} {'us/op':>10} {'95% CI (us)':>18} {'ops/s':>10}")
    for k, (ns, lo, hi) in ops.items():
        print(f"{k:<44} {ns / 1e3:>10.2f} {f'{lo / 1e3:.2f}..{hi / 1e3:.2f}':>18} {1e9 / ns:>10.0f}")
    cold, rest = ops.get("open/open_read_4KiB_cold"), ops.get("open/open_read_4KiB_unsigned_part")
    if cold and rest:
        share = (cold[0] - rest[0]) / cold[0]
        print(f"\nsignature checks in a first open of 4 KiB: {share * 100:.0f}% of it")
    warm = ops.get("open/open_read_4KiB_warm")
    if warm and rest:
        share = (warm[0] - rest[0]) / warm[0]
        print(f"signature memo lookups in a reopen of 4 KiB: {share * 100:.0f}% of it")
    signed, unsigned = ops.get("save/save_4KiB_signed"), ops.get("save/save_4KiB_unsigned")
    if signed and unsigned:
        share = (signed[0] - unsigned[0]) / signed[0]
        print(f"writer signature in a save of 4 KiB: {share * 100:.0f}% of it")

if not rows:
    if ops:
        sys.exit(0)
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
