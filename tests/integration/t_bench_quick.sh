#!/usr/bin/env bash
# t_bench_quick.sh - `streambus bench --quick` runs, prints every figure (in
# text and as JSON that parses) with each ratio's range over the reps and no
# working notes (targets, the seed's figures: docs/BENCHMARKS.md has them);
# streambus-bench (not installed) counts allocations, none per random read;
# nothing is left behind in the scratch directory.
# Run by tools/test with SB_BUILD=<build dir>, in the plain build only (a
# benchmark under a sanitizer times the sanitizer).
set -euo pipefail
: "${SB_BUILD:?SB_BUILD must name the build directory}"
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$SB_BUILD/streambus
bbin=$SB_BUILD/streambus-bench

for b in "$bin" "$bbin"; do
	[ -x "$b" ] || { echo "t_bench_quick: $b is missing (build failed?)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/t_bench_quick.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/scratch"

# Text report, our side only.
"$bin" bench --quick --no-leveldb --dir "$work/scratch" >"$work/out.txt"
for key in index_lookup index_lookup_stat append_39_nosync append_100_nosync append_fsync_1w \
	append_fsync_8w read_random scan_stream scan_per_record read_stream_random_4k open_clean; do
	grep -q "\[$key\]" "$work/out.txt" || { cat "$work/out.txt"; echo "text report lacks $key" >&2; exit 1; }
done
if grep -q FAILED "$work/out.txt"; then cat "$work/out.txt"; echo "a figure failed" >&2; exit 1; fi
grep -q '^allocation counting: off' "$work/out.txt" || { cat "$work/out.txt"; echo "streambus bench counts allocations (it must not replace malloc)" >&2; exit 1; }

# Text report, both sides: each ratio with its range; no working notes.
"$bin" bench --quick --dir "$work/scratch" >"$work/both.txt"
for f in "$work/out.txt" "$work/both.txt"; do
	if grep -Eiq 'MISSED|seed|to beat|target|beaten' "$f"; then
		grep -Ein 'MISSED|seed|to beat|target|beaten' "$f"; echo "working notes in the report" >&2; exit 1
	fi
done
n=$(grep -c '^    ours vs LevelDB: [0-9.]*x (\(ours\|LevelDB\) better); range [0-9.]*x\.\.[0-9.]*x over [0-9]* reps$' "$work/both.txt" || true)
[ "$n" = 10 ] || { cat "$work/both.txt"; echo "want 10 ratios with their range, got $n" >&2; exit 1; }
grep -q 'other processes used [0-9.]* CPUs.*own threads not counted' "$work/both.txt" ||
	{ head -3 "$work/both.txt"; echo "the busy-machine line does not leave out our own threads" >&2; exit 1; }

# JSON, both sides, with allocations counted (streambus-bench).
start=$(date +%s)
"$bbin" --quick --json --dir "$work/scratch" >"$work/out.json"
secs=$(( $(date +%s) - start ))
echo "bench --quick --json took ${secs}s"

# The scratch directory is removed afterwards.
if [ -n "$(ls -A "$work/scratch")" ]; then
	ls -la "$work/scratch"; echo "bench left files behind" >&2; exit 1
fi

python3 - "$work/out.json" "${SB_INTEGRATION_ASAN:-}" "$secs" <<'PY'
import json, sys
path, asan, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = json.load(open(path))
want = ["index_lookup", "index_lookup_stat", "append_39_nosync", "append_100_nosync",
        "append_fsync_1w", "append_fsync_8w", "read_random", "scan_stream",
        "scan_per_record", "read_stream_random_4k", "open_clean"]
errors = []
figs = d["figures"]
counting = d["alloc_counting"]
if not asan and not counting:
    errors.append("allocation counting is off in a build without sanitizers")
for k in want:
    f = figs.get(k)
    if f is None:
        errors.append(f"{k}: missing"); continue
    for side in ("ours", "leveldb"):
        v = f.get(side)
        if side == "leveldb" and k == "index_lookup":
            if not (isinstance(v, dict) and v.get("na")):
                errors.append(f"{k}: leveldb side should say why it is n/a")
            continue
        if not isinstance(v, dict) or v.get("ok") is not True:
            errors.append(f"{k}/{side}: not measured: {v}"); continue
        if not isinstance(v.get("value"), (int, float)) or not v["value"] > 0:
            errors.append(f"{k}/{side}: bad value {v.get('value')}")
        a = v.get("allocs_per_op")
        if counting and not isinstance(a, (int, float)):
            errors.append(f"{k}/{side}: allocs_per_op missing")
        if not counting and a is not None:
            errors.append(f"{k}/{side}: allocs_per_op given without counting")
    if k != "index_lookup":
        r = [f.get(x) for x in ("ours_vs_leveldb_min", "ours_vs_leveldb", "ours_vs_leveldb_max")]
        if not all(isinstance(x, (int, float)) for x in r) or not r[0] <= r[1] <= r[2]:
            errors.append(f"{k}: no ours_vs_leveldb ratio with its range: {r}")
        if f.get("ratio_reps", 0) < 3:
            errors.append(f"{k}: the ratio's range is not over >= 3 reps")
    for w in ("target", "target_value", "target_met", "seed_figure"):
        if w in f:
            errors.append(f"{k}: working note {w} in the JSON")
x = figs["append_fsync_1w"]["ours"]
for e in ("records_per_s", "records_per_fsync", "bare_pwrite_fdatasync_us", "ratio_vs_bare"):
    if not isinstance(x.get(e), (int, float)):
        errors.append(f"append_fsync_1w: {e} missing")
if not isinstance(figs["append_fsync_8w"]["ours"].get("records_per_fsync"), (int, float)):
    errors.append("append_fsync_8w: records_per_fsync missing")
if not figs["index_lookup_stat"]["ours"].get("index_entries", 0) >= 9000:
    errors.append("index_lookup_stat: the log's index does not have ~10,000 entries")
# A random read by offset allocates nothing (the store's contract for reads
# into a caller buffer).
if counting and figs["read_random"]["ours"]["allocs_per_op"] != 0:
    errors.append("read_random: sb_log_read allocates")
if not asan and secs > 60:
    errors.append(f"--quick took {secs}s (meant to take a few seconds)")
for e in errors:
    print("t_bench_quick:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# Compressed append (bench --compression --only append): the timed window
# opens with sealed segments waiting for the compressor (an untimed pass of
# the same records first), so the zstd side is timed while its compressor
# works; both sides' appending thread is accounted (getrusage); nothing is
# left in the scratch directory. 24 MiB of corpus: ~7 sealed 8 MiB segments
# after the first pass, more than the compressor does in the 0.4 s wait.
"$bin" bench --compression --only append --pairs 1 --corpus-mb 24 --dir "$work/scratch" >"$work/z.txt"
w=$(sed -n 's/^zstd: sealed segments waiting for the compressor when the window opened (median) \([0-9]*\); compressed during the window [0-9]*$/\1/p' "$work/z.txt")
[ -n "$w" ] && [ "$w" -ge 1 ] || { cat "$work/z.txt"; echo "bench --compression: no sealed segment waiting for the compressor when the timed window opened" >&2; exit 1; }
grep -q '^the appending thread, none / zstd (medians): user [0-9.]* / [0-9.]* s, system' "$work/z.txt" ||
	{ cat "$work/z.txt"; echo "bench --compression: the appending thread's getrusage line is missing" >&2; exit 1; }
grep -q '^append per CPU second of the appending thread' "$work/z.txt" || { cat "$work/z.txt"; exit 1; }
[ -z "$(ls -A "$work/scratch")" ] || { ls -la "$work/scratch"; echo "bench --compression left files behind" >&2; exit 1; }
echo "t_bench_quick: ok"
