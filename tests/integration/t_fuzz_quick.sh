#!/usr/bin/env bash
# t_fuzz_quick.sh - the libFuzzer targets of tests/fuzz/ (tools/fuzz): built
# with clang-14 into build-fuzz/ (their own ASan+UBSan+libFuzzer build,
# whatever SB_BUILD is), each run for SB_FUZZ_QUICK_SECS seconds (default
# 60, as issue 8 asks) over a copy of its seed corpus, SB_FUZZ_QUICK_JOBS
# targets at a time (default: one per core, nproc; each fuzzer is one
# process): on 2 cores six targets take 3 minutes, what six at 30 s one
# after the other took, on top of the build. In tools/test's sanitizer pass (SB_INTEGRATION_ASAN=1) the
# same instrumented targets would only repeat that, so there each seed corpus
# is replayed once instead (the regression inputs among them included).
# Fails when clang-14 or libFuzzer is missing: never skipped.
# Long campaigns: tools/fuzz SECONDS (docs/RELIABILITY.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${SB_FUZZ_QUICK_SECS:-60}
jobs=${SB_FUZZ_QUICK_JOBS:-$(nproc)}
if [ -n "${SB_INTEGRATION_ASAN:-}" ]; then
	secs=0
	echo "t_fuzz_quick: sanitizer pass: replaying each seed corpus once (the fuzzing ran in the plain pass)"
fi
command -v clang-14 >/dev/null || { echo "t_fuzz_quick: clang-14 is missing (tools/packages.txt)" >&2; exit 1; }
findings=$(mktemp -d /tmp/t_fuzz_quick.XXXXXX)
trap 'rm -rf "$findings"' EXIT
targets=$(cd "$top/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
[ "$(echo "$targets" | wc -w)" -ge 5 ] || { echo "t_fuzz_quick: expected 5 targets, found: $targets" >&2; exit 1; }
out=$(SB_FUZZ_FINDINGS=$findings SB_FUZZ_JOBS=$jobs "$top/tools/fuzz" "$secs" $targets 2>&1) && rc=0 || rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
	for f in "$findings"/*/crash-* "$findings"/*/leak-* "$findings"/*/timeout-*; do
		[ -f "$f" ] && { echo "input: $f"; xxd "$f" | head -20; }
	done
	echo "t_fuzz_quick: a fuzz target failed (reproduce: build-fuzz/TARGET INPUT)" >&2
	exit 1
fi
n=$(echo "$out" | grep -c '^\[fuzz\] fuzz_[a-z]*: [0-9]*s, [0-9]* runs' || true)
[ "$n" -eq "$(echo "$targets" | wc -w)" ] || { echo "t_fuzz_quick: $n targets reported, want all" >&2; exit 1; }
