#!/usr/bin/env bash
# `streambus stat`, `dump` and `verify` of a mounted LOG_DIR whose oldest
# segments go all the time (rm of the oldest records, beside a writer, over
# small segments): each run exits 0 and says nothing on stderr, as on a
# quiet LOG_DIR. A segment dropped between a tool's listing of the topic and
# its open of that segment made the tool leave the topic out ("cannot open:
# N.seg: No such file or directory", "no such topic", exit 2) or verify count
# a missing file or log start as damage (exit 1 or 2); found by an
# exploratory tester (tests/explore7/dump_live_retention.sh). Rarer: a
# record being copied into the newest segment read as corrupt ("a mount
# would recover: ... corrupt record ... cut"), a break in the log. Damage does
# not go away on a second look: a topic damaged while mounted is still
# reported (verify exit 1). SB_LIVE_SECONDS (default 8) how long the tools
# run.
SB_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
SB_TOOL=$SB_BUILD/streambus

sb_mount -o segment_bytes=4096 -o sync=never
M=$SB_MNT
mkdir "$M/t" || sb_die "mkdir"

case_ "stat, dump and verify beside a writer and rm of the oldest records"
stop=$SB_TMP/stop
# the writer: lines of 64 bytes, about 60 to a segment; the remover: the
# oldest record while 400 newer ones are there, so that a segment goes
# every few milliseconds
python3 - "$M/t" "$stop" <<'EOF' &
import os, sys, time
t, stop = sys.argv[1], sys.argv[2]
fd = os.open(t + "/.log", os.O_WRONLY | os.O_APPEND)
while not os.path.exists(stop):
    os.write(fd, b"".join(b"a line of the live topic, long enough to fill segments: %5d\n" % i
                          for i in range(40)))
    time.sleep(0.02)
os.close(fd)
EOF
W=$!
SB_CLEANUP_HOOKS+=("touch '$stop'; wait $W 2>/dev/null")
python3 - "$M/t" "$stop" <<'EOF' &
import os, sys, time
t, stop = sys.argv[1], sys.argv[2]
rec = lambda o: "%s/%020d" % (t, o)
o = 0
while not os.path.exists(stop):
    if os.path.exists(rec(o + 400)):
        os.unlink(rec(o))
        o += 1
    else:
        time.sleep(0.005)
EOF
R=$!
SB_CLEANUP_HOOKS+=("wait $R 2>/dev/null")
end=$((SECONDS + ${SB_LIVE_SECONDS:-8}))
runs=0 bad=0
while [ $SECONDS -lt $end ]; do
	for cmd in stat dump verify; do
		opt=()
		[ $cmd = verify ] && opt=(--no-progress)
		runs=$((runs + 1))
		"$SB_TOOL" $cmd "${opt[@]}" "$SB_LOG" t >"$SB_TMP/out" 2>"$SB_TMP/err"
		rc=$?
		if [ $rc -ne 0 ] || [ -s "$SB_TMP/err" ]; then
			bad=$((bad + 1))
			[ $bad -le 3 ] && sb_msg "$cmd exit $rc: $(cat "$SB_TMP/err"; grep -v "^offset=" "$SB_TMP/out" | tail -4)"
		fi
	done
done
touch "$stop"
wait $W $R
assert_eq 0 "$bad" "runs of stat, dump and verify that failed or warned, of $runs"
sb_msg "   $runs runs; the topic holds offsets $(ls "$M/t" | head -1 | sed 's/^0*//')..$(ls "$M/t" | tail -1 | sed 's/^0*//')"
[ "$(ls "$M/t" | head -1)" != "$(rec 0)" ] || assert_fail_now "the remover removed nothing"
case_ "a topic damaged while mounted: verify still finds it"
mkdir "$M/bad" || sb_die "mkdir"
tsh 'for i in $(seq 1 200); do echo "line $i of the damaged topic" >> "$1/bad/.log" || exit 1; done' "$M" ||
	assert_fail_now "the appends"
# a sealed segment's record bytes, damaged behind the daemon's back (it
# reads only what it is asked): a byte in the middle of the first segment
seg=$SB_LOG/bad/$(rec 0).seg
printf '\377' | dd of="$seg" bs=1 seek=200 conv=notrunc status=none || assert_fail_now "dd"
t "$SB_TOOL" verify --no-progress "$SB_LOG" bad >"$SB_TMP/bad.out" 2>&1
assert_eq 1 "$?" "verify of the damaged topic while mounted: $(tail -3 "$SB_TMP/bad.out")"

sb_umount
assert_ok "$SB_TOOL" verify --no-progress "$SB_LOG" t
