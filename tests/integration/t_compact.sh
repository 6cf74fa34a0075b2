#!/usr/bin/env bash
# SPEC §2 "Keys", cleanup = compact, through the mount: keyed records
# (echo > TOPIC/.keys/K, many versions of three keys) and unkeyed lines
# (echo >> .log) over small segments; the daemon compacts the sealed ones in
# the background. Then:
#   - ls lists fewer records than were appended, and skips the gaps: every
#     listed offset reads (cat), every offset in between is ENOENT;
#   - .log is exactly the listed records' payloads in offset order (it skips
#     the removed ones), and every unkeyed line is still in it;
#   - .keys/K is each key's latest value;
#   - after a remount the same; `streambus verify` passes on LOG_DIR;
#   - a backup of the topic's records (cp -a: names are offsets, keys in
#     xattrs) copied back in order into a new topic restores the same
#     offsets with the same gaps (SPEC §3), the same .log and keys;
#   - a .log reader, and a .since/TIME reader, reading slowly while rounds
#     run reads exactly what a copy taken at its open holds, then what was
#     appended since;
#   - kill -9 of the daemon while a writer appends and it compacts: every
#     key the value last acknowledged (or the one in flight); verify passes.
SB_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
SB_TOOL=$SB_BUILD/streambus

OPTS=(-o cleanup=compact -o segment_bytes=4096 -o sync=always -o delete_retention_ms=0)
sb_mount "${OPTS[@]}"
M=$SB_MNT
mkdir "$M/t" || sb_die "mkdir"

# ---------------------------------------------------------------------------
case_ "keyed versions and unkeyed lines over small segments"
pad=$(printf '%0200d' 0)
n=100 # 25 x (a, b, c, a line)
tsh 'for v in $(seq 1 25); do
	for k in a b c; do printf "%s" "$k$v-$2" > "$1/t/.keys/$k" || exit 1; done
	echo "line$v" >> "$1/t/.log" || exit 1
done' "$M" "$pad" || assert_fail_now "the appends"
assert_eq "$(ls "$M/t" | tail -1)" "$(rec $((n - 1)))" "$n records appended"
# A round runs when a segment is sealed: two lines of 5,000 bytes seal the
# segment holding the last keyed records, so that every superseded record
# is in a sealed segment (the newest is never compacted).
tsh 'for i in 1 2; do printf "%05000d\n" "$i" >> "$1/t/.log" || exit 1; done' "$M" || assert_fail_now "the long lines"
n=$((n + 2))
assert_eq "$(cat "$M/t/.keys/a")" "a25-$pad" "the latest value of a"

case_ "the daemon compacts the sealed segments"
# every key's latest (3) and the 25 lines and 2 long ones stay
sb_wait_until '[ "$(ls "$M/t" | wc -l)" -le 30 ]' $((20 * SB_SLOW)) ||
	assert_fail_now "still $(ls "$M/t" | wc -l) of $n records listed"
pass_

check_all() {
	local listed offs o prev=-1 want=$SB_TMP/want.log
	listed=$(ls "$M/t")
	offs=$(printf '%s\n' "$listed" | sed 's/^0*\([0-9]\)/\1/')
	: >"$want"
	for o in $offs; do
		t cat "$M/t/$(rec "$o")" >>"$want" || assert_fail_now "cat of listed offset $o"
		# an offset between two listed ones: compacted away
		if [ $((o - prev)) -gt 1 ]; then
			assert_fail_with ENOENT cat "$M/t/$(rec $((prev + 1)))"
		fi
		prev=$o
	done
	assert_eq "$prev" "$((n - 1))" "the newest record is listed"
	t cmp "$want" "$M/t/.log" || assert_fail_now ".log differs from the listed records' payloads"
	pass_
	for v in $(seq 1 25); do
		grep -q "line$v\$" "$M/t/.log" || assert_fail_now "unkeyed line$v lost"
	done
	pass_
	for k in a b c; do
		assert_eq "$(cat "$M/t/.keys/$k")" "${k}25-$pad" "the latest value of $k"
	done
}

case_ "ls skips the gaps, .log the removed payloads, keys their latest"
check_all

case_ "after a remount; streambus verify"
sb_umount
assert_ok "$SB_TOOL" verify "$SB_LOG"
sb_mount "${OPTS[@]}"
check_all

case_ "a backup with gaps (cp -a of the records) copied back in order into a new topic"
B=$SB_TMP/backup
mkdir -p "$B"
t cp -a "$M/t" "$B/" || assert_fail_now "cp -a of the topic"
mkdir "$M/r" || assert_fail_now "mkdir r"
for f in $(ls "$B/t"); do
	t cp -a "$B/t/$f" "$M/r/" || assert_fail_now "cp -a of record $f back"
done
assert_eq "$(ls "$M/r" | tr '\n' ' ')" "$(ls "$M/t" | tr '\n' ' ')" "the same offsets, the same gaps"
t cmp "$M/t/.log" "$M/r/.log" || assert_fail_now ".log of the copy differs"
pass_
for k in a b c; do
	assert_eq "$(cat "$M/r/.keys/$k")" "${k}25-$pad" "the copy's latest value of $k"
done

case_ "a backup with 2,000 gaps restored by rsync -a: the gaps share segments"
# A tester's restore of 3,000 records with gaps made a segment file at every
# gap, each held open: the daemon ran out of descriptors. The gaps now go
# into the active segment (format.h "Compacted segment").
B2=$SB_TMP/gapped
mkdir -p "$B2"
python3 - "$B2" <<'PY' || assert_fail_now "making the backup"
import os, sys
for i in range(2000):
    p = "%s/%020d" % (sys.argv[1], 3 * i)
    with open(p, "wb") as f:
        f.write(b"record %d\n" % (3 * i))
    os.utime(p, ns=(1700000000 * 10**9 + i, 1700000000 * 10**9 + i))
PY
mkdir "$M/big" || assert_fail_now "mkdir big"
t rsync -a "$B2/" "$M/big/" || assert_fail_now "rsync -a of the backup into the mount"
assert_eq "$(ls "$M/big" | tr '\n' ' ')" "$(ls "$B2" | tr '\n' ' ')" "the same offsets, the same gaps"
t diff -r -x '.*' "$B2" "$M/big" || assert_fail_now "a restored record differs"
pass_
segs=$(ls "$SB_LOG/big" | grep -c '\.seg$')
# 2,000 records of 44 bytes over 4 KiB segments: about 22 by size
assert_true '[ "$segs" -le 40 ]' "$segs segment files for 2,000 records with 2,000 gaps"
tsh 'echo appended >> "$1/big/.log"' "$M" || assert_fail_now "an append after the restore"
assert_eq "$(rec 5998)" "$(ls "$M/big" | tail -1)" "the next append after the restore"

case_ "rm of the oldest listed record, whatever gaps precede it (SPEC §5); rm -r of the topic"
mkdir "$M/g" || assert_fail_now "mkdir g"
for o in 0 2 6 7; do
	tsh 'echo "g$2" > "$1/g/$(printf %020d "$2")"' "$M" "$o" || assert_fail_now "record $o of g"
done
assert_ok rm "$M/g/$(rec 0)"
assert_fail_with EPERM rm "$M/g/$(rec 6)"
assert_ok rm "$M/g/$(rec 2)"
assert_eq "$(rec 6) $(rec 7) " "$(ls "$M/g" | tr '\n' ' ')" "after rm of 0 and 2 (gaps at 1 and 3-5)"
assert_eq g6 "$(head -n 1 "$M/g/.log")" ".log starts at record 6"
assert_ok rm -r "$M/g"
assert_fail_with ENOENT stat "$M/g"
first=$(ls "$M/r" | head -1)
assert_true '[ "$first" != "$(rec 0)" ]' "r's offset 0 was compacted away (first listed: $first)"
assert_ok rm -r "$M/r"
assert_fail_with ENOENT stat "$M/r"
sb_umount
assert_ok "$SB_TOOL" verify "$SB_LOG"

# The slow-reader cases' helpers (python; argv: MNT PAD OUT TOPIC): put a
# keyed version through .keys/, seal the segment with two long lines, wait
# until at most N records are listed.
SLOW_READER_PY='import os, sys, time
m, pad, out, t = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def put(k, v):
    val = ("%s%d-%s" % (k, v, pad)).encode()
    with open(m + "/" + t + "/.keys/" + k, "wb") as f:
        f.write(val)
    return val
def seal():
    # two long lines seal the segment of the last keyed records
    val = b"".join(b"%05000d\n" % i for i in (1, 2))
    with open(m + "/" + t + "/.log", "ab") as f:
        f.write(val[:5001]); f.flush(); f.write(val[5001:])
    return val
def listed():
    return len(os.listdir(m + "/" + t))
def settle(most):
    t0 = time.time()
    while listed() > most and time.time() - t0 < 60:
        time.sleep(0.05)
    return listed() <= most
'

# ---------------------------------------------------------------------------
# SPEC §2: readers are never disturbed. A .log reader takes a copy of the
# topic's stream through its own open (pread from 0), then reads slowly
# (a small piece after each round of appends) while new versions of every
# key make the daemon compact the segments it is reading, and at the end
# the rest: it reads exactly the copy, then what was appended since. A
# .log opened after the rounds reads the compacted stream (shorter).
case_ "a slow .log reader while the daemon compacts reads what it would have read"
sb_mount "${OPTS[@]}"
mkdir "$M/v" || assert_fail_now "mkdir v"
timeout $((60 * SB_SLOW)) python3 -c '
'"$SLOW_READER_PY"'
for v in range(1, 31):
    for k in "abcd":
        put(k, v)
seal()
if not settle(12):
    sys.exit("no round ran: %d records listed" % listed())
fd = os.open(m + "/v/.log", os.O_RDONLY)
def pread_all(off):
    got = b""
    while True:
        b = os.pread(fd, 65536, off + len(got))
        if not b:
            return got
        got += b
before = pread_all(0)  # the copy, taken at the open
got, appended = b"", b""
for v in range(31, 61):
    for k in "abcd":
        appended += put(k, v)
    b = os.pread(fd, 150, len(got))  # slowly: a piece at a time
    got += b
appended += seal()
if not settle(12):
    sys.exit("no round ran after the reader opened: %d listed" % listed())
got += pread_all(len(got))
want = before + appended
with open(m + "/v/.log", "rb") as f:
    fresh = f.read()
os.close(fd)
if len(fresh) >= len(want):
    sys.exit("the rounds removed nothing: %d bytes, %d appended" % (len(fresh), len(want)))
if got != want:
    i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    sys.exit("the reader read %d bytes, %d expected; first difference at %d: %r, want %r" %
             (len(got), len(want), i, got[i:i + 20], want[i:i + 20]))
open(out, "w").write("ok %d %d\n" % (len(got), len(fresh)))
' "$M" "$pad" "$SB_TMP/slowreader.out" v || assert_fail_now "the slow reader (see above)"
assert_eq "$(cut -d' ' -f1 "$SB_TMP/slowreader.out")" ok "the slow reader read what it would have"
sb_umount
assert_ok "$SB_TOOL" verify "$SB_LOG"

# ---------------------------------------------------------------------------
# The same for a .since/TIME reader (SPEC §2): TIME falls between two
# batches of versions of every key; after the rounds compacted them the
# reader opens .since/TIME (its start then lies in segments the next rounds
# rewrite), takes a copy, reads slowly while more versions make the daemon
# compact, then the rest: exactly the copy, then what was appended since. A
# second open after the rounds (the same node: the first is still open)
# reads the compacted stream from TIME on, here the whole .log.
case_ "a slow .since/TIME reader while the daemon compacts reads what it would have read"
sb_mount "${OPTS[@]}"
mkdir "$M/w" || assert_fail_now "mkdir w"
timeout $((60 * SB_SLOW)) python3 -c '
'"$SLOW_READER_PY"'
for v in range(1, 16):
    for k in "abcd":
        put(k, v)
time.sleep(0.05)
ts = time.time_ns()
time.sleep(0.05)
for v in range(16, 31):
    for k in "abcd":
        put(k, v)
seal()
if not settle(12):
    sys.exit("no round ran: %d records listed" % listed())
name = m + "/w/.since/@%d.%09d" % (ts // 10**9, ts % 10**9)
fd = os.open(name, os.O_RDONLY)
def pread_all(fd, off):
    got = b""
    while True:
        b = os.pread(fd, 65536, off + len(got))
        if not b:
            return got
        got += b
before = pread_all(fd, 0)
if not before.startswith(b"a30-") and not before.startswith(b"b30-") and \
   not before.startswith(b"c30-") and not before.startswith(b"d30-"):
    sys.exit("the .since file starts with %r, not a version 30" % before[:20])
got, appended = b"", b""
for v in range(31, 61):
    for k in "abcd":
        appended += put(k, v)
    got += os.pread(fd, 150, len(got))
appended += seal()
if not settle(12):
    sys.exit("no round ran after the reader opened: %d listed" % listed())
got += pread_all(fd, len(got))
want = before + appended
with open(m + "/w/.log", "rb") as f:
    fresh = f.read()
fd2 = os.open(name, os.O_RDONLY)
again = pread_all(fd2, 0)
os.close(fd2)
os.close(fd)
if len(fresh) >= len(want):
    sys.exit("the rounds removed nothing: %d bytes, %d appended" % (len(fresh), len(want)))
if got != want:
    i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    sys.exit("the reader read %d bytes, %d expected; first difference at %d: %r, want %r" %
             (len(got), len(want), i, got[i:i + 20], want[i:i + 20]))
if again != fresh:
    sys.exit("an open after the rounds read %d bytes %r..., the compacted .log is %d %r..." %
             (len(again), again[:20], len(fresh), fresh[:20]))
open(out, "w").write("ok %d %d\n" % (len(got), len(fresh)))
' "$M" "$pad" "$SB_TMP/slowsince.out" w || assert_fail_now "the slow .since reader (see above)"
assert_eq "$(cut -d' ' -f1 "$SB_TMP/slowsince.out")" ok "the slow .since reader read what it would have"
sb_umount
assert_ok "$SB_TOOL" verify "$SB_LOG"

# ---------------------------------------------------------------------------
# A record's name the kernel has looked up, then removed by a round: stat
# must say ENOENT at once, as ls and cat do. The kernel cached record names
# 10 s, so stat, test -e and rsync (exit 23: stat ok, open ENOENT) saw a
# removed record up to 10 s (tests/explore7/stale_compacted_name.sh).
case_ "a record a round removed is gone for stat at once"
sb_mount "${OPTS[@]}"
mkdir "$M/n" || assert_fail_now "mkdir"
echo old >"$M/n/.keys/k" || assert_fail_now "the first value"
t stat "$M/n/$(rec 0)" >/dev/null || assert_fail_now "stat of record 0"
echo new >"$M/n/.keys/k" || assert_fail_now "the second value"
tsh 'for i in 1 2; do printf "%05000d\n" "$i" >> "$1/n/.log" || exit 1; done' "$M" || assert_fail_now "the long lines"
# the name stays looked up (the kernel asks again whenever it may) until ls
# no longer lists the record
sb_wait_until '! stat "$M/n/$(rec 0)" >/dev/null 2>&1 || ! ls "$M/n" | grep -q "^$(rec 0)\$"' $((20 * SB_SLOW)) ||
	assert_fail_now "no round removed record 0"
assert_fail_with ENOENT stat "$M/n/$(rec 0)"
assert_fail_with ENOENT cat "$M/n/$(rec 0)"
assert_eq "$(cat "$M/n/.keys/k")" new "the key's latest value"
sb_umount

# ---------------------------------------------------------------------------
# A writer of five keys while the daemon compacts every segment it seals;
# kill -9 at a random moment; after the remount every key reads the value
# last acknowledged (sync=always) or the one in flight, and verify passes.
# SB_COMPACT_KILLS (default 2) kills.
for run in $(seq 1 "${SB_COMPACT_KILLS:-2}"); do
	case_ "kill -9 of the daemon while it compacts ($run), then remount"
	sb_mount "${OPTS[@]}"
	mkdir -p "$M/k"
	ack=$SB_TMP/ack.$run
	: >"$ack"
	# python: a close that fails is an error (bash ignores the close of a
	# redirection: its printf > f "succeeded" when the daemon died in the
	# flush, and the value was counted as acknowledged)
	timeout 120 python3 -c '
import os, sys
m, pad, ack = sys.argv[1], sys.argv[2], sys.argv[3]
with open(ack, "a") as a:
    for v in range(1, 100000):
        for k in "pqrsu":
            try:
                fd = os.open(m + "/k/.keys/" + k, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.write(fd, ("%s%d-%s" % (k, v, pad)).encode())
                os.close(fd)
            except OSError:
                sys.exit(0)
            a.write("%s %d\n" % (k, v))
            a.flush()
' "$M" "$pad" "$ack" 2>/dev/null &
	wpid=$!
	sleep "0.$((RANDOM % 6 + 4))" # 0.4 to 0.9 s: several segments sealed and compacted
	kill -KILL "$SB_PID"
	sb_wait_exit "$SB_PID" $((20 * SB_SLOW)) || assert_fail_now "daemon did not exit on SIGKILL"
	wait "$wpid"
	t fusermount3 -u "$M" 2>/dev/null || sb_unmount_dir "$M"
	SB_PID=""
	sb_mount "${OPTS[@]}"
	for k in p q r s u; do
		last=$(awk -v k="$k" '$1 == k { v = $2 } END { print v + 0 }' "$ack")
		[ "$last" -gt 0 ] || continue
		got=$(cat "$M/k/.keys/$k" 2>/dev/null | cut -d- -f1)
		case "$got" in
		"$k$last" | "$k$((last + 1))") pass_ ;;
		*) assert_fail_now "key $k: '$got' after the crash, acknowledged $k$last" ;;
		esac
	done
	sb_umount
	assert_ok "$SB_TOOL" verify "$SB_LOG"
done
