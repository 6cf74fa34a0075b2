#!/usr/bin/env bash
# SPEC §1: a mount or `streambus recover` started right after fusermount3 -u
# returns works: it waits (a few seconds at most, saying so) for the previous
# daemon to let go. A LOG_DIR held by a live mount is refused at once, naming
# the process that holds it. SB_REMOUNT_CYCLES sets the number of
# append / unmount / remount cycles (default 24; 9 under a sanitizer, each
# after-unmount user three times: the race is counted in the plain pass,
# the sanitizer looks at the code paths); SB_REMOUNT_TOPICS the
# topics written in each (default 16: their closing takes the daemon a while).
. "$(dirname "$0")/lib.sh"
SB_TOOL=$SB_BUILD/streambus
[ -x "$SB_TOOL" ] || sb_die "no tool at $SB_TOOL (build it first)"
command -v flock >/dev/null || sb_die "missing tool: flock (util-linux)"
cycles=${SB_REMOUNT_CYCLES:-24}
[ -n "$SB_ASAN" ] && cycles=${SB_REMOUNT_CYCLES:-9}
topics=${SB_REMOUNT_TOPICS:-16}

# lock_pid: the pid the lock note names (its first line)
lock_pid() { head -1 "$SB_LOG/.lock" 2>/dev/null | tr -dc 0-9; }

# the other users of LOG_DIR, right after the unmount: in turn recover, stat
# and dump (read-only), verify, or none
after_umount() {
	local c=$1 old=$2 out err rc
	case $((c % 4)) in
	0)
		out=$(t "$SB_TOOL" recover "$SB_LOG" 2>"$SB_TMP/tool.err"); rc=$?
		err=$(cat "$SB_TMP/tool.err")
		assert_eq 0 "$rc" "cycle $c: recover right after fusermount3 -u: exit status ($err)" ||
			sb_die "cycle $c: recover failed (later cases need the mount)"
		# the previous daemon closed every log (clean markers, indexes) before recover got in
		assert_eq "nothing to recover" "$out" "cycle $c: recover output" ;;
	1)
		out=$(t "$SB_TOOL" stat "$SB_LOG" 2>"$SB_TMP/tool.err"); rc=$?
		err=$(cat "$SB_TMP/tool.err")
		assert_eq 0 "$rc" "cycle $c: stat right after fusermount3 -u: exit status ($err)"
		assert_eq "$((topics + 1))" "$(printf '%s\n' "$out" | grep -Ec '^(loop|side)')" "cycle $c: stat lists every topic"
		t "$SB_TOOL" dump --raw "$SB_LOG/loop" >"$SB_TMP/dump.out" 2>>"$SB_TMP/tool.err"
		assert_eq 0 "$?" "cycle $c: dump right after fusermount3 -u ($(cat "$SB_TMP/tool.err"))"
		assert_eq "$expected" "$(cat "$SB_TMP/dump.out")"$'\n' "cycle $c: dump has every acknowledged record"
		err=$(grep -v "waiting (up to 10 s) for process $old to release $SB_LOG" "$SB_TMP/tool.err") ;;
	2)
		# verify waits for the daemon too, then checks the indexes its
		# unmount wrote, counted: nothing is "in use" or "not counted"
		out=$(t "$SB_TOOL" verify "$SB_LOG" 2>"$SB_TMP/tool.err"); rc=$?
		err=$(cat "$SB_TMP/tool.err")
		assert_eq 0 "$rc" "cycle $c: verify right after fusermount3 -u: exit status ($err)"
		assert_true '! grep -Eq "in use|not counted" <<<"$out"' \
			"cycle $c: verify right after fusermount3 -u checks a log no longer in use: [$(grep -E "in use|not counted" <<<"$out" | head -3)]" ;;
	*)
		return 0 ;;
	esac
	# saying whom it waits for, and nothing else (no "a mount would recover")
	assert_true '[ -z "$err" ] || [[ "$err" == *": waiting (up to 10 s) for process $old to release $SB_LOG ..." ]]' \
		"cycle $c: the tool says only whom it waits for: [$err]"
}

case_ "$cycles cycles: append, fusermount3 -u, at once recover / stat and dump / verify / nothing, mount again"
sb_mount
assert_ok mkdir "$SB_MNT/loop"
assert_sh_ok 'for i in $(seq "$2"); do mkdir "$1/side$i" || exit 1; done' "$SB_MNT" "$topics"
expected=""
for c in $(seq 1 "$cycles"); do
	k=$((RANDOM % 40 + 1))
	batch=""
	for i in $(seq "$k"); do batch+="c$c-r$i-$RANDOM"$'\n'; done
	expected+=$batch
	printf '%s' "$batch" >"$SB_TMP/batch"
	assert_sh_ok 'cat "$1" >> "$2/loop/.log" && for i in $(seq "$3"); do echo "$4" >> "$2/side$i/.log" || exit 1; done' \
		"$SB_TMP/batch" "$SB_MNT" "$topics" "c$c" || sb_die "cycle $c: append failed"
	old=$SB_PID
	# straight fusermount3 -u, no waiting for the daemon (sb_umount waits)
	t fusermount3 -u "$SB_MNT" || sb_die "cycle $c: fusermount3 -u failed"
	after_umount "$c" "$old"
	sb_mount   # fatal if the start fails (as it did in 20 of 20 tries)
	out=$(cat "$SB_TMP/daemon.$SB_MOUNT_SEQ.out")
	assert_true '[ -z "$out" ] || [[ "$out" == *"waiting (up to "*" s) for process "*" to release $SB_LOG"* ]]' \
		"cycle $c: the daemon says whom it waits for: [$out]"
	assert_eq "$SB_PID" "$(lock_pid)" "cycle $c: the lock names the new daemon"
	got=$(t cat "$SB_MNT/loop/.log")
	assert_eq "$expected" "$got"$'\n' "cycle $c: every acknowledged record after the remount"
done
n=$(printf '%s' "$expected" | wc -l)
assert_eq "$n" "$(sb_count "$SB_MNT/loop")" "records after $cycles cycles"
assert_eq "$cycles" "$(sb_count "$SB_MNT/side$topics")" "records of a side topic after $cycles cycles"

case_ "a LOG_DIR held by a live mount is refused at once, naming the daemon"
M2=$(sb_mkmnt two)
t0=$SECONDS
out=$(t "$SB_BIN" -f "$SB_LOG" "$M2" 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "a second daemon on a mounted LOG_DIR: exit status ($out)"
assert_true '[[ "$out" == *"in use by process $SB_PID"* ]]' "the refusal names the daemon's pid $SB_PID: [$out]"
assert_true '[[ "$out" == *"$SB_MNT"* ]]' "the refusal names the mount point: [$out]"
assert_true '[[ "$out" != *waiting* ]]' "no waiting for a live mount: [$out]"
assert_le $((SECONDS - t0)) 3 "refused at once (seconds)"
assert_true '! sb_is_mounted "$M2"' "nothing mounted on the second mount point"
# detached, too (the parent reports the child's refusal)
out=$(t "$SB_BIN" "$SB_LOG" "$M2" 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "a second detached daemon: exit status ($out)"
assert_true '[[ "$out" == *"in use by process $SB_PID"* ]]' "detached: the refusal names the pid: [$out]"
t0=$SECONDS
out=$(t "$SB_TOOL" recover "$SB_LOG" 2>&1); rc=$?
assert_eq 2 "$rc" "recover on a mounted LOG_DIR: exit status ($out)"
assert_eq "streambus recover: $SB_LOG: in use by process $SB_PID, which has it mounted on $SB_MNT; unmount it first" \
	"$out" "recover's refusal"
assert_le $((SECONDS - t0)) 3 "recover refused at once (seconds)"
sb_umount

case_ "a holder that is not a mount (flock(1) here) is waited for, saying so"
flock -x -o "$SB_LOG/.lock" sleep 1.5 &
holder=$!
sb_wait_until 'grep -q "FLOCK.* $holder " /proc/locks' 5 || assert_fail_now "flock(1) did not take the lock"
out=$(t "$SB_TOOL" recover "$SB_LOG" 2>&1); rc=$?
assert_eq 0 "$rc" "recover waits for the holder to let go ($out)"
assert_true '[[ "$out" == *"waiting (up to 10 s) for process $holder to release $SB_LOG"* ]]' "recover names the holder: [$out]"
wait "$holder"
flock -x -o "$SB_LOG/.lock" sleep 1.5 &
holder=$!
sb_wait_until 'grep -q "FLOCK.* $holder " /proc/locks' 5 || assert_fail_now "flock(1) did not take the lock"
sb_mount
out=$(cat "$SB_TMP/daemon.$SB_MOUNT_SEQ.out")
assert_true '[[ "$out" == *"waiting (up to 10 s) for process $holder to release $SB_LOG"* ]]' "the daemon names the holder: [$out]"
wait "$holder"
sb_umount

case_ "the wait is bounded: a holder that never lets go is refused after 10 s, by name"
flock -x -o "$SB_LOG/.lock" sleep 60 &
holder=$!
sb_wait_until 'grep -q "FLOCK.* $holder " /proc/locks' 5 || assert_fail_now "flock(1) did not take the lock"
t0=$SECONDS
t "$SB_TOOL" recover "$SB_LOG" >"$SB_TMP/rec.out" 2>&1 &
rec=$!
out=$(t "$SB_BIN" "$SB_LOG" "$SB_MNT" 2>&1 </dev/null); rc=$?
el=$((SECONDS - t0))
assert_eq 1 "$rc" "the daemon gives up on a holder that never lets go ($out)"
assert_true '[[ "$out" == *"still in use by process $holder after 10 s"* ]]' "the daemon names the holder: [$out]"
assert_true '[ "$el" -ge 9 ] && [ "$el" -le $((15 * SB_SLOW)) ]' "it waited about 10 s ($el s)"
wait "$rec"; rc=$?
out=$(cat "$SB_TMP/rec.out")
assert_eq 2 "$rc" "recover gives up too ($out)"
assert_true '[[ "$out" == *"still in use by process $holder after 10 s"* ]]' "recover names the holder: [$out]"
assert_true '! sb_is_mounted' "nothing mounted"
kill $(pgrep -P "$holder") "$holder" 2>/dev/null
wait "$holder" 2>/dev/null || true
