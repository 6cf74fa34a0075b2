#!/usr/bin/env bash
# SPEC §1/§3/§6: the crash loop (tools/crashloop), short: cycles of writers
# appending through the mount (lines through .log, whole files), kill -9 of
# the daemon at a random moment or a clean fusermount3 -u, an immediate
# remount, and the check: every acknowledged record there exactly once, in
# each writer's order, nothing nobody wrote, no garbage, `streambus verify`
# clean, the key index (`.keys/`) exactly the file records' keys, each
# serving its record. First the checker's own test: a lost acknowledged line,
# a line no writer wrote, a line appended twice and a file record's key
# forgotten must each fail it.
#   SB_CRASHLOOP_CYCLES=N   cycles (default 20; 8 under SB_INTEGRATION_ASAN)
#   SB_CRASHLOOP_SEED=N     the seed (default: random, printed)
# The long campaign (docs/RELIABILITY.md) is tools/crashloop --cycles 1000.
. "$(dirname "$0")/lib.sh"
CL=$SB_TOP/tools/crashloop
SEED=${SB_CRASHLOOP_SEED:-$RANDOM}
CYCLES=${SB_CRASHLOOP_CYCLES:-20}
[ -n "$SB_ASAN" ] && CYCLES=${SB_CRASHLOOP_CYCLES:-8}
sb_msg "t_crashloop: seed $SEED, $CYCLES cycles (SB_CRASHLOOP_SEED=$SEED reproduces the choices)"
export SB_T=$((60 + 10 * CYCLES))

# crashloop ARGS...: run it with its work directory in $SB_TMP (so that
# lib.sh's cleanup finds whatever it might leave mounted); prints its output.
crashloop() {
	t python3 "$CL" --build "$SB_BUILD" --dir "$SB_TMP" "$@" 2>&1
}

for plant in lost foreign dup keyless; do
	case_ "the checker finds a planted '$plant' record"
	out=$(crashloop --cycles 1 --seed "$SEED" --plant "$plant" --max-run 0.5 --clean 0)
	rc=$?
	case $plant in
	lost) want='acknowledged, [0-9]+ there \(lost' ;;
	foreign) want='a record of writer c0w0l, which never wrote' ;;
	dup) want='records out of order, doubled or missing' ;;
	keyless) want='/\.keys: [0-9]+ keys listed, [0-9]+ file records: without a record' ;;
	esac
	assert_eq 1 "$rc" "crashloop --plant $plant exits 1 ($(printf '%s' "$out" | tail -3))"
	assert_true '[[ "$out" =~ $want ]]' "crashloop --plant $plant names the defect ($(printf '%s' "$out" | tail -3))"
	assert_true '[[ "$out" =~ "crashloop: 1 cycles, 0 records checked, 1 failures" ]]' "the summary counts the failure"
	# a failing cycle's epoch is kept for analysis; not needed here
	rm -rf "$SB_TMP"/crashloop.*
done

case_ "$CYCLES cycles of kill -9 or clean unmount, remount, check"
start=$SECONDS
out=$(crashloop --cycles "$CYCLES" --seed "$SEED" --epoch 10 --max-run 0.5)
rc=$?
sb_msg "$(printf '%s' "$out" | tail -1) in $((SECONDS - start)) s"
assert_eq 0 "$rc" "crashloop exits 0: $(printf '%s' "$out" | tail -20)"
summary=$(printf '%s\n' "$out" | grep -E '^crashloop: [0-9]+ cycles, [0-9]+ records checked, [0-9]+ failures' | tail -1)
read -r cycles records failures <<<"$(printf '%s' "$summary" | sed -E 's/^crashloop: ([0-9]+) cycles, ([0-9]+) records checked, ([0-9]+) failures.*/\1 \2 \3/')"
assert_eq "$CYCLES" "${cycles:-}" "every cycle ran ($summary)"
assert_eq 0 "${failures:-}" "no failure ($summary)"
assert_true '[ "${records:-0}" -ge $((CYCLES * 20)) ]' "records were written and checked ($summary)"
assert_true '[ -z "$(ls -d "$SB_TMP"/crashloop.* 2>/dev/null)" ]' "crashloop removed its work directory"
assert_true '! grep -q "$SB_TMP" /proc/self/mounts' "crashloop left nothing mounted"
assert_true '[ -z "$(pgrep -f "streambusfs.*$SB_TMP")" ]' "crashloop left no daemon running"
