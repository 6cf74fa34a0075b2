#!/usr/bin/env bash
# tools/bench-fs, tiny sizes: every figure is printed with both sides'
# medians and the ratio's range over the reps; "cold" is cold for both sides
# (the residency of the files read, measured with fincore and printed, is
# low on both); the random reads draw from as many records as files; no
# targets or verdicts in the output (docs/BENCHMARKS.md has the targets).
. "$(dirname "$0")/lib_tool.sh"
[ "$(id -u)" = 0 ] || fail "needs root (bench-fs mounts and drops caches)"
[ -x "$SB_BUILD/streambusfs" ] || fail "$SB_BUILD/streambusfs is missing"
export SB_BENCH_GB=0.01 SB_BENCH_LINES=2000 SB_BENCH_RAND=20000 SB_BENCH_READS=2000 \
	SB_BENCH_RECORDS=5000 SB_BENCH_REPS=2 SB_BENCH_DIR=$T
set +e
SB_BUILD=$SB_BUILD timeout 600 "$SB_TOP/tools/bench-fs" >"$T/out" 2>"$T/err"; rc=$?
set -e
eq "$rc" 0 "bench-fs exit ($(tail -5 "$T/err"))"
out=$(cat "$T/out")
hasnt "$out" 'MISSED|target|met$' "working notes in the output"
has "$out" 'random reads among 20000 records|ratio' "header"
grep -q 'random reads among 20000 records' "$T/err" || fail "the random reads do not say what they draw from"
for f in 'append 10 MB' 'read 10 MB .log, cold' 'write\(\) per 100-byte line' \
	 'open\+read\+close random record, cold' 'open\+read\+close random record, warm' \
	 'ls of \.keys of 5000 keys, cold' 'cat of a random key in \.keys, after the ls' 'cat of a random key in \.keys, warm'; do
	has "$out" "^$f.* [0-9.]+ +[0-9.]+  [0-9.]+x \\[[0-9.]+\\.\\.[0-9.]+\\]" "$f: both sides and the ratio's range"
done
has "$out" '^ls of 5000 records, cold' "ls figure"
# residency before each cold comparison: "ours A% B%; bindfs C% D%", all low
# (ls, ours only, is printed with its residency but not checked: in a topic
# this small the few pages the daemon keeps mapped are a large share)
python3 - "$T/out" <<'PY' || fail "cold figures are not cold: $out"
import re, sys
n = 0
for line in open(sys.argv[1]):
    if ", cold" not in line or "bindfs" not in line:
        continue
    m = re.search(r"resident before: ours ([0-9.% ]+)(?:; bindfs ([0-9.% ]+))?$", line.strip())
    assert m, line
    for side in m.groups():
        for x in (side or "").split():
            assert float(x.rstrip("%")) <= 10, line
            n += 1
assert n == 8, n
PY
[ -z "$(ls -A "$T" | grep sb-bench)" ] || fail "bench-fs left its scratch directory"
echo "t_tool_benchfs: ok"
