#!/usr/bin/env bash
# t_bench_quick.sh - `streambus bench --quick` runs, prints every figure (in
# text and as JSON that parses), counts no allocation per random read, and
# leaves nothing behind in its scratch directory.
# Run by tools/test with SB_BUILD=<build dir>.
set -euo pipefail
: "${SB_BUILD:?SB_BUILD must name the build directory}"
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$SB_BUILD/streambus

[ -x "$bin" ] || { echo "t_bench_quick: $bin is missing (build failed?)" >&2; exit 1; }

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

# JSON, both sides.
start=$(date +%s)
"$bin" bench --quick --json --dir "$work/scratch" >"$work/out.json"
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
    if k != "index_lookup" and not isinstance(f.get("ours_vs_leveldb"), (int, float)):
        errors.append(f"{k}: no ours_vs_leveldb ratio")
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
echo "t_bench_quick: ok"
