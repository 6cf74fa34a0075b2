#!/usr/bin/env bash
# Issue 8 item 4, through the mount: the daemon's system calls under its log
# directory fail in turn (tools/faults, an LD_PRELOAD library counting and
# failing the Nth call of a kind, EIO or ENOSPC) while a workload appends
# lines and files, creates and removes topics and old records; each case
# checks that the daemon stays up, a failed segment sync refuses the
# topic's appends until the remount, and after a remount every
# acknowledged record is there once and in order, nothing else, and
# `streambus verify` passes. First the checker's own test.
#   SB_FAULTS_SEED=N   the sampling seed (default: random, printed)
# The campaign (every call of every kind, each errno, each sync policy) is
# `tools/faults --all --sync POLICY` (docs/RELIABILITY.md).
. "$(dirname "$0")/lib.sh"
SEED=${SB_FAULTS_SEED:-$RANDOM}
sb_msg "t_faults: seed $SEED (SB_FAULTS_SEED=$SEED reproduces the sampling)"
F=$SB_TOP/tools/faults
[ -e "$SB_BUILD/libsbfaultshim.so" ] || sb_die "no $SB_BUILD/libsbfaultshim.so (build target sbfaultshim)"
export SB_T=600

case_ "the checks catch a lost, doubled, foreign or reordered record and an append after a failed sync"
assert_ok "$F" --self-test

# a sanitizer daemon is slower: the first, last and one more call of each kind
per=4
[ -n "$SB_ASAN" ] && per=2
policies="always never interval"
[ -n "$SB_ASAN" ] && policies="always"
for sync in $policies; do
	case_ "sync=$sync: calls failed in turn, $per per kind (EIO, ENOSPC)"
	out=$(t "$F" --build "$SB_BUILD" --sync "$sync" --per-kind $per --seed "$SEED" --work "$SB_TMP" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^faults: (FAIL|per kind|[0-9]+ cases|seed)' >&2
	assert_eq 0 "$rc" "tools/faults --sync $sync: every case passes"
	assert_true 'printf "%s\n" "$out" | grep -qE "^faults: [0-9]+ cases, 0 failed"' "a summary line with 0 failed"
done
