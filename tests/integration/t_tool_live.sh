#!/usr/bin/env bash
# SPEC §6/§7: the tools read a LOG_DIR while it is mounted and appended to,
# and a copy of LOG_DIR taken while mounted mounts and recovers to a prefix
# of the log. Small segments roll all the time; each roll trims the sealed
# segment's preallocated tail, which killed stat/dump/verify with SIGBUS
# when they had mapped it; verify must not count a segment being created or
# a record being written at the live tail as damage. SB_LIVE_SECS sets how long the tools loop
# (default 4).
. "$(dirname "$0")/lib.sh"
SB=$SB_BUILD/streambus
[ -x "$SB" ] || sb_die "no tool at $SB"
SECS=${SB_LIVE_SECS:-4}

sb_mount -o segment_bytes=16384,index_interval_bytes=1024,sync=never
M=$SB_MNT
mkdir "$M/t" || sb_die "mkdir"

# The appender: line n is "n" padded to 100..400 bytes, one record a write,
# until $SB_TMP/stop exists; it writes the count it reached to $SB_TMP/count.
cat >"$SB_TMP/append.py" <<'EOF'
import os, sys
def line(n):
    return (str(n) + " " + "x" * (100 + n * 37 % 300) + "\n").encode()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
n = 0
while not os.path.exists(sys.argv[2]):
    os.write(fd, line(n))
    n += 1
os.close(fd)
open(sys.argv[3], "w").write(str(n))
EOF
# prefix.py FILE: is FILE's content lines 0..k-1 of the appender? prints k.
cat >"$SB_TMP/prefix.py" <<'EOF'
import sys
def line(n):
    return (str(n) + " " + "x" * (100 + n * 37 % 300) + "\n").encode()
data = open(sys.argv[1], "rb").read()
pos = n = 0
while pos < len(data):
    l = line(n)
    if data[pos:pos + len(l)] != l:
        print("bad record %d at byte %d" % (n, pos)); sys.exit(1)
    pos += len(l); n += 1
print(n)
EOF
python3 "$SB_TMP/append.py" "$M/t/.log" "$SB_TMP/stop" "$SB_TMP/count" &
APP=$!
SB_CLEANUP_HOOKS+=("touch '$SB_TMP/stop'; wait $APP 2>/dev/null")

case_ "stat, dump and verify in a loop beside appends that roll segments"
# SECS at least, and on until more than 20 segments have rolled (a loaded
# machine appends slower: 19 segments in 4 s at nice 19, load 8), with a
# deadline
end=$((SECONDS + SECS)) deadline=$((SECONDS + 60 * SB_SLOW))
runs=0 crashed=0 failed=0
nsegs() { ls "$SB_LOG/t" | grep -c '\.seg$'; }
while [ $SECONDS -lt $end ] || { [ "$(nsegs)" -le 20 ] && [ $SECONDS -lt $deadline ]; }; do
	for cmd in "stat $SB_LOG" "dump $SB_LOG t" "verify $SB_LOG"; do
		# shellcheck disable=SC2086
		t "$SB" $cmd >"$SB_TMP/tool.out" 2>&1
		rc=$?
		runs=$((runs + 1))
		if [ $rc -ge 124 ]; then
			crashed=$((crashed + 1))
			sb_msg "streambus $cmd: exit status $rc"; tail -3 "$SB_TMP/tool.out" >&2
		elif [ $rc -ne 0 ]; then
			failed=$((failed + 1))
			sb_msg "streambus $cmd: exit status $rc"; tail -5 "$SB_TMP/tool.out" >&2
		fi
	done
done
segs=$(nsegs)
sb_msg "   $runs tool runs, $(cat "$M/t/.log" | wc -l) records, $segs segments"
assert_eq 0 "$crashed" "tool runs killed by a signal (SIGBUS) or timed out"
assert_eq 0 "$failed" "tool runs that failed on a healthy live log"
assert_true '[ "$segs" -gt 20 ]' "segments rolled during the loop"

case_ "cp -a and rsync -a of LOG_DIR during appends mount and recover to a prefix"
copies=()
for i in 1 2 3; do
	sleep 0.3
	# Known, left open: cp exits 1 when an index's temp file (*.idx.tmp)
	# vanishes under it; any other complaint fails.
	t cp -a "$SB_LOG" "$SB_TMP/cp$i" 2>"$SB_TMP/cp.err"
	rc=$?
	assert_true '[ $rc = 0 ] || ! grep -qv "cannot stat .*\.tmp.: No such file" "$SB_TMP/cp.err"' \
		"cp -a of LOG_DIR: exit $rc $(cat "$SB_TMP/cp.err")"
	[ -s "$SB_TMP/cp.err" ] && sb_msg "   cp -a: $(cat "$SB_TMP/cp.err")"
	copies+=("$SB_TMP/cp$i")
	if command -v rsync >/dev/null; then
		# 24: files vanished meanwhile (an index's .tmp): a warning
		t rsync -a "$SB_LOG/" "$SB_TMP/rs$i/" 2>"$SB_TMP/rsync.err"
		rc=$?
		assert_true '[ $rc = 0 ] || [ $rc = 24 ]' "rsync -a of LOG_DIR: exit $rc $(cat "$SB_TMP/rsync.err")"
		copies+=("$SB_TMP/rs$i")
	fi
done
touch "$SB_TMP/stop"
wait $APP
written=$(cat "$SB_TMP/count")
for c in "${copies[@]}"; do
	m2=$(sb_mkmnt "$(basename "$c")")
	rm -f "$c/.lock"
	if ! t "$SB_BIN" "$c" "$m2" >"$SB_TMP/copy.out" 2>&1; then
		assert_fail_now "mount of the copy $c: $(cat "$SB_TMP/copy.out")"
		continue
	fi
	got=$(t python3 "$SB_TMP/prefix.py" "$m2/t/.log")
	assert_true '[[ "$got" =~ ^[0-9]+$ ]] && [ "$got" -gt 0 ] && [ "$got" -le "$written" ]' \
		"the copy $(basename "$c") holds a prefix of the $written records written (got: $got)"
	t fusermount3 -u "$m2" || assert_fail_now "unmount of the copy $c"
done
assert_eq "$written" "$(t python3 "$SB_TMP/prefix.py" "$M/t/.log")" "the live log holds every record written"
sb_umount

# dump --follow (SPEC §7): the records there, then those a mount appends, in
# every form, until SIGINT or SIGTERM (exit 0); across segment rolls and
# retention removing the oldest segments meanwhile.
cat >"$SB_TMP/write.py" <<'EOF2'
import os, sys, time
def line(n):
    return (str(n) + " " + "y" * (100 + n * 37 % 300) + "\n").encode()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for n in range(int(sys.argv[2]), int(sys.argv[3])):
    os.write(fd, line(n))
    if n % 10 == 9:
        time.sleep(float(sys.argv[4]))
os.close(fd)
EOF2
case_ "dump --follow prints each record a mount appends once, in order, across rolls and retention"
SB_LOG=$SB_TMP/log2  # topic t's retention would be warned about meanwhile
mkdir "$SB_LOG"
sb_mount -o segment_bytes=4096,index_interval_bytes=1024,sync=never,retention_bytes=49152
M=$SB_MNT
mkdir "$M/f" || sb_die "mkdir"
N=400
t python3 "$SB_TMP/write.py" "$M/f/.log" 0 40 0
"$SB" dump --follow "$SB_LOG" f >"$SB_TMP/f.txt" 2>"$SB_TMP/f.txt.err" &
F1=$!
sb_bg "$SB" dump --json "$SB_LOG/f" --follow >"$SB_TMP/f.json" 2>"$SB_TMP/f.json.err" &
F2=$!
"$SB" dump --raw --follow "$SB_LOG" f >"$SB_TMP/f.raw" 2>"$SB_TMP/f.raw.err" &
F3=$!
SB_CLEANUP_HOOKS+=("kill $F1 $F2 $F3 2>/dev/null; wait $F1 $F2 $F3 2>/dev/null")
t python3 "$SB_TMP/write.py" "$M/f/.log" 40 $N 0.1
lines() { cat "$SB_TMP/f.txt" 2>/dev/null | wc -l; }
sb_wait_until '[ "$(lines)" -ge $N ] && [ "$(wc -l <"$SB_TMP/f.json")" -ge $N ]' $((20 * SB_SLOW)) ||
	sb_msg "   the followers printed $(lines) and $(wc -l <"$SB_TMP/f.json") records of $N"
sleep 0.3
kill -TERM $F1
kill -INT $F2
kill -TERM $F3
for p in $F1 $F2 $F3; do
	wait $p
	assert_eq 0 $? "dump --follow exit status at SIGTERM/SIGINT"
done
assert_eq "" "$(cat "$SB_TMP/f.txt.err" "$SB_TMP/f.json.err" "$SB_TMP/f.raw.err")" "dump --follow: nothing on stderr"
assert_true '[ ! -e "$SB_LOG/f/00000000000000000000.seg" ]' "retention removed the first segment meanwhile"
assert_eq "$(seq -s ' ' 0 $((N - 1)))" "$(sed 's/^offset=\([0-9]*\) .*/\1/' "$SB_TMP/f.txt" | tr '\n' ' ' | sed 's/ $//')" \
	"dump --follow: offsets 0..$((N - 1)), each once, in order"
assert_eq "ok" "$(python3 - "$SB_TMP/f.json" "$SB_TMP/f.raw" "$N" <<'EOF2'
import json, sys
def line(n):
    return (str(n) + " " + "y" * (100 + n * 37 % 300) + "\n").encode()
n = int(sys.argv[3])
want = [line(i) for i in range(n)]
got = [json.loads(l) for l in open(sys.argv[1])]
bad = [j["offset"] for i, j in enumerate(got) if j["offset"] != i or j["value"].encode() != want[i]]
raw = open(sys.argv[2], "rb").read()
print("ok" if len(got) == n and not bad and raw == b"".join(want) else
      "json: %d records, bad %s; raw: %d bytes of %d" % (len(got), bad[:5], len(raw), len(b"".join(want))))
EOF2
)" "dump --follow --json and --raw: every record once, as written"

case_ "dump --follow that falls behind retention names the offsets it never printed"
mkdir "$M/gap" || sb_die "mkdir"
assert_sh_ok 'echo first >> "$1"' "$M/gap/.log"
"$SB" dump --follow "$SB_LOG" gap >"$SB_TMP/gap.out" 2>"$SB_TMP/gap.err" &
F5=$!
SB_CLEANUP_HOOKS+=("kill -CONT $F5 2>/dev/null; kill $F5 2>/dev/null")
sb_wait_until 'grep -q "value=\"first" "$SB_TMP/gap.out"' $((10 * SB_SLOW)) || assert_fail_now "the follower printed nothing"
kill -STOP $F5  # behind: retention drops what it has not printed
assert_sh_ok 'for i in $(seq 1000); do echo "line $i padded to be a hundred bytes or so, so that retention drops segments"; done >> "$1"' "$M/gap/.log"
sb_wait_until '[ ! -e "$SB_LOG/gap/00000000000000000000.seg" ]' $((15 * SB_SLOW)) || assert_fail_now "retention kept the first segment"
kill -CONT $F5
assert_sh_ok 'echo last >> "$1"' "$M/gap/.log"
sb_wait_until 'grep -q "value=\"last" "$SB_TMP/gap.out"' $((10 * SB_SLOW)) || assert_fail_now "the follower did not go on"
kill -TERM $F5; wait $F5
assert_eq 0 $? "dump --follow behind retention: exit status at SIGTERM"
gap=$(sed -n 's/.*: offsets \([0-9]*\)\.\.\([0-9]*\) were removed (retention or rm) before they were printed$/\1 \2/p' "$SB_TMP/gap.err")
assert_eq 1 "$(wc -l <"$SB_TMP/gap.err")" "one line on stderr: $(cat "$SB_TMP/gap.err")"
assert_true '[ -n "$gap" ]' "the gap named: $(cat "$SB_TMP/gap.err")"
read -r g0 g1 <<<"$gap"
assert_eq "$(seq -s ' ' 0 1001)" \
	"$( (sed 's/^offset=\([0-9]*\) .*/\1/' "$SB_TMP/gap.out"; seq "${g0:-0}" "${g1:-0}") | sort -n | tr '\n' ' ' | sed 's/ $//')" \
	"the offsets printed and the gap named: 0..1001, each once"

case_ "dump --follow ends, exit 2, saying so, when its topic is removed"
mkdir "$M/g" || sb_die "mkdir"
"$SB" dump --follow "$SB_LOG" g >"$SB_TMP/g.out" 2>"$SB_TMP/g.err" &
F4=$!
SB_CLEANUP_HOOKS+=("kill $F4 2>/dev/null")
sleep 0.5
assert_ok rmdir "$M/g"
sb_wait_exit $F4 $((10 * SB_SLOW)) || kill $F4
wait $F4
assert_eq 2 $? "dump --follow exit status when the topic is removed"
assert_eq "streambus dump: $SB_LOG/g: the topic was removed: nothing more to follow" "$(cat "$SB_TMP/g.err")" \
	"dump --follow: the topic removed"

case_ "the tool given the mountpoint (or a topic in it) for LOG_DIR: refused, naming the LOG_DIR"
log_real=$(realpath "$SB_LOG")
mkdir "$M/mp" || sb_die "mkdir mp"
for a in "stat $M" "verify $M" "dump $M mp" "dump $M/mp" "get $M mp k" "recover $M"; do
	out=$("$SB" $a 2>&1); rc=$?
	assert_eq 2 "$rc" "streambus $a: exit status ($out)"
	assert_true 'grep -qF "in a streambusfs mount: give the LOG_DIR it mounts, $log_real" <<<"$out"' \
		"streambus $a: said: $out"
done
sb_umount
