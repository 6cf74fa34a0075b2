#!/usr/bin/env bash
# SPEC §2 "Seek by time" and §3 record times, through the mount:
# TOPIC/.since/TIME in every form of TIME (ISO 8601 with Z, a fraction, a
# numeric zone, a date alone; @EPOCH with a fraction; -90s and the like)
# against a brute-force scan of records whose times a writer set (utimens on
# a created file, cp -p, touch -d), stepping back and forth; names that are
# no time; .since listed nowhere and listing nothing; a moment no record
# reaches yet (empty, then it starts at the first record that does);
# tail -f of a .since file; the answer kept across a remount (time index
# files) and after they are removed (rebuilt).
. "$(dirname "$0")/lib.sh"
sb_mount
M=$SB_MNT
mkdir "$M/t" || sb_die "mkdir"

# 400 records created as files whose times the writer sets (os.utime on
# the open file, as cp -p does): 2023-11-14T22:13:20Z + a walk that mostly
# goes forward and sometimes steps back. Their times go to $SB_TMP/ts.
t python3 - "$M/t" "$SB_TMP/ts" <<'EOF' || sb_die "creating records"
import os, random, sys
rnd = random.Random(11)
B = 1700000000 * 10**9
t, out = B, []
for i in range(400):
    t += rnd.choice([rnd.randrange(1, 10**9), rnd.randrange(1, 10**9), -rnd.randrange(1, 5 * 10**9), 0])
    p = os.path.join(sys.argv[1], "k%03d" % i)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"rec %d\n" % i)
    os.utime(fd, ns=(t, t))
    os.close(fd)
    out.append(t)
open(sys.argv[2], "w").write("".join("%d\n" % x for x in out))
EOF

# expect TIME_NS: the payloads from the first record whose time is >= it.
expect() {
	python3 - "$SB_TMP/ts" "$1" <<'EOF'
import sys
ts = [int(x) for x in open(sys.argv[1])]
q = int(sys.argv[2])
first = next((i for i, x in enumerate(ts) if x >= q), len(ts))
sys.stdout.write("".join("rec %d\n" % i for i in range(first, len(ts))))
EOF
}
# iso NS [ZONE_MINUTES]: the moment in ISO 8601 with ns, in that zone.
iso() {
	python3 - "$1" "${2:-0}" <<'EOF'
import datetime, sys
ns, zm = int(sys.argv[1]), int(sys.argv[2])
tz = datetime.timezone(datetime.timedelta(minutes=zm))
d = datetime.datetime.fromtimestamp(ns // 10**9, tz)
z = "Z" if zm == 0 else "%+03d:%02d" % (zm // 60 if zm >= 0 else -((-zm) // 60), abs(zm) % 60)
print(d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09d" % (ns % 10**9) + z)
EOF
}

case_ "record times are the ones the writer set"
first=$(head -1 "$SB_TMP/ts")
assert_eq "$first" "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$M/t/$(rec 0)")" "record 0's timestamp xattr"
assert_eq "$((first / 1000000000))" "$(t stat -c %Y "$M/t/$(rec 0)")" "record 0's mtime"
printf 'copied\n' >"$SB_TMP/cp.src"
touch -d @1500000000.25 "$SB_TMP/cp.src"
assert_ok cp -p "$SB_TMP/cp.src" "$M/t/cpfile"
assert_eq 1500000000250000000 "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$M/t/$(rec 400)")" "cp -p sets the record's time"
assert_ok touch -d 2020-01-02T03:04:05.5Z "$M/t/touched"
assert_eq 1577934245500000000 "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$M/t/$(rec 401)")" "touch -d of a new name"
# they stepped back far: the running maximum keeps them in every .since
# file that reached an earlier record
printf '%s\n%s\n' 1500000000250000000 1577934245500000000 >>"$SB_TMP/ts"
# (their payloads are not "rec N": compare through a helper)
expect_all() {
	expect "$1" | sed -e 's/^rec 400$/copied/' -e 's/^rec 401$//' | sed '/^$/d'
}

case_ ".since/TIME in every form, against a scan (random moments)"
mapfile -t moments < <(python3 - "$SB_TMP/ts" <<'EOF'
import random
import sys
ts = [int(x) for x in open(sys.argv[1])][:400]
rnd = random.Random(5)
picks = [min(ts) - 1, max(ts), max(ts) + 1] + [rnd.choice(ts) + rnd.choice([-1, 0, 1]) for _ in range(12)]
for p in picks:
    print(p)
EOF
)
n=0
for q in "${moments[@]}"; do
	want=$(expect_all "$q")
	sec=$((q / 1000000000)); frac=$(printf '%09d' $((q % 1000000000)))
	case $((n % 4)) in
	0) name=$(iso "$q") ;;
	1) name=$(iso "$q" 60) ;;
	2) name=$(iso "$q" -330) ;;
	3) name="@$sec.$frac" ;;
	esac
	assert_eq "$want" "$(t cat "$M/t/.since/$name")" "cat .since/$name"
	n=$((n + 1))
done
assert_eq "$(expect_all 0)" "$(t cat "$M/t/.since/2023-11-14")" "a date alone: midnight UTC"
assert_eq "$(expect_all 1700000000000000000)" "$(t cat "$M/t/.since/@1700000000")" "@EPOCH"
assert_eq "" "$(t cat "$M/t/.since/-1h")" "nothing that recent (times are of 2023)"
assert_eq "$(t stat -c %s "$M/t/.log")" "$(t stat -c %s "$M/t/.since/1970-01-01")" "from the start: .log's size"

case_ "a far date (past 2262 or before 1678) bounds like any"
assert_eq "" "$(t cat "$M/t/.since/9999-12-31T23:59:59Z")" "9999: nothing that recent"
assert_eq "$(t stat -c %s "$M/t/.log")" "$(t stat -c %s "$M/t/.since/1600-01-01")" "1600: from the start"

case_ "names that are no time, and what .since is"
for bad in yesterday 2023-13-01 -5 @x 2023-11-14T25:00:00Z; do
	assert_fail_with ENOENT cat "$M/t/.since/$bad"
done
assert_true '[ -d "$M/t/.since" ]' ".since is a directory"
assert_eq "" "$(t ls -A "$M/t/.since")" ".since lists nothing"
assert_eq 0 "$(t ls -A "$M/t" | grep -c since)" "a topic does not list .since"
assert_fail_with "EPERM|EACCES" sh -c "echo x > '$M/t/.since/@1'"

case_ "a moment no record reaches yet: empty, then it starts at the first that does"
fut=$(( $(date +%s) + 3600 ))
assert_eq 0 "$(t stat -c %s "$M/t/.since/@$fut")" "a future moment: empty"
assert_sh_ok 'echo now >> "$1"' "$M/t/.log"
assert_eq "" "$(t cat "$M/t/.since/@$fut")" "a record of now does not reach it"
assert_ok touch -d "@$((fut + 5))" "$M/t/late"
assert_ok touch -d "@$((fut - 100))" "$M/t/early"
assert_sh_ok 'echo after >> "$1"' "$M/t/.log"
assert_eq "after" "$(t cat "$M/t/.since/@$fut")" "starts at the first record that reaches it (empty ones), the rest follow"
assert_eq "now" "$(t cat "$M/t/.since/-10m" | head -1)" "-10m: from the line appended now"

case_ "tail -f of a .since file follows appends"
out=$SB_TMP/tailf
timeout 120 tail -c +1 -f "$M/t/.since/-1h" >"$out" 2>"$out.err" &
tpid=$!
for i in 1 2 3; do
	assert_sh_ok 'echo "follow $2" >> "$1"' "$M/t/.log" "$i"
	sleep 0.3
done
sb_wait_until 'grep -q "follow 3" "$out"' $((10 * SB_SLOW)) || assert_fail_now "tail -f did not follow: $(cat "$out" "$out.err")"
assert_eq "$(printf 'now\nafter\nfollow 1\nfollow 2\nfollow 3')" "$(cat "$out")" "tail -f saw the records from -1h on, then the appends"
kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null

case_ "the same answers after a remount, and with the time index files removed"
q=${moments[5]}
want=$(t cat "$M/t/.since/@$((q / 1000000000)).$(printf '%09d' $((q % 1000000000)))")
sb_remount
assert_eq "$want" "$(t cat "$M/t/.since/@$((q / 1000000000)).$(printf '%09d' $((q % 1000000000)))")" "after a remount"
ntix=$(ls "$SB_LOG/t"/*.tix 2>/dev/null | wc -l)
assert_true '[ "$ntix" -ge 1 ]' "time index files beside the segments ($ntix)"
sb_umount
rm -f "$SB_LOG/t"/*.tix
sb_mount
assert_eq "$want" "$(t cat "$M/t/.since/@$((q / 1000000000)).$(printf '%09d' $((q % 1000000000)))")" "time index rebuilt"

# follow NAME TOPIC T SETUP HEAD_GOES WANT_AFTER: a tail -f of
# TOPIC/.since/@T (T after the records already there) and one of
# TOPIC/.log, both started once SETUP ran; HEAD_GOES takes the oldest
# records away under them, `c1` is appended after it, and the .since
# follower must have printed exactly what the .log follower printed after
# the records before T, with no complaint (no "file truncated", no error).
follow() {
	local name=$1 tp=$2 tt=$3 before=$4 out=$SB_TMP/sf.$1 n
	n=$(t cat "$M/$tp/.log" | wc -l)
	timeout 120 tail -c +1 -f -s 0.2 "$M/$tp/.since/@$tt" >"$out.since" 2>"$out.since.err" &
	local p1=$!
	timeout 120 tail -c +1 -f -s 0.2 "$M/$tp/.log" >"$out.log" 2>"$out.log.err" &
	local p2=$!
	# both followers have read what is there before the head goes (a
	# follower that opened later would start past what it took)
	sb_wait_until "[ \$(wc -l <'$out.log') -ge $n ] && [ \$(wc -l <'$out.since') -ge $((n - before)) ]" $((10 * SB_SLOW)) ||
		assert_fail_now "$name: the followers did not start: '$(cat "$out.log.err" "$out.since.err")'"
	eval "$5" || assert_fail_now "$name: the head did not go"
	assert_sh_ok 'echo c1 >> "$1"' "$M/$tp/.log"
	sb_wait_until "grep -qx c1 '$out.since' && grep -qx c1 '$out.log'" $((10 * SB_SLOW)) ||
		assert_fail_now "$name: c1 not followed: since '$(tail -2 "$out.since")' $(cat "$out.since.err"); log '$(tail -2 "$out.log")'"
	kill "$p1" "$p2" 2>/dev/null; wait "$p1" "$p2" 2>/dev/null
	assert_eq "" "$(cat "$out.since.err")" "$name: the .since follower saw no shrink and no error"
	assert_eq "$(sed "1,${before}d" "$out.log")" "$(cat "$out.since")" \
		"$name: the .since follower printed what the .log follower did after the records before T"
}
# after_t TOPIC: a moment after the records TOPIC has, before the next
after_t() { sleep 0.05; date +%s.%N; sleep 0.05; }

case_ "tail -f of a .since file goes on when the head goes under it (rm, retention, compaction)"
mkdir "$M/rh" || sb_die "mkdir rh"
assert_sh_ok 'for i in $(seq -w 10); do echo "a$i"; done >> "$1"' "$M/rh/.log"
tt=$(after_t)
assert_sh_ok 'for i in $(seq -w 10); do echo "b$i"; done >> "$1"' "$M/rh/.log"
follow rm rh "$tt" 10 'sb_wait_until "grep -qx b10 $SB_TMP/sf.rm.since" $((10 * SB_SLOW)) &&
	for i in $(seq 0 14); do rm "$M/rh/$(printf %020d $i)" || return 1; done'

# an open .since file keeps what rm took from its start on, as .log does
mkdir "$M/rp" || sb_die "mkdir rp"
assert_sh_ok 'for i in $(seq -w 10); do echo "a$i"; done >> "$1"' "$M/rp/.log"
tt=$(after_t)
assert_sh_ok 'for i in $(seq -w 10); do echo "b$i"; done >> "$1"' "$M/rp/.log"
got=$(t python3 - "$M/rp" "$tt" <<'PY'
import os, sys, time
d, tt = sys.argv[1], sys.argv[2]
with open(os.path.join(d, ".since", "@" + tt), "rb", buffering=0) as f:
    first = f.read(4)
    for i in range(15):
        os.unlink(os.path.join(d, "%020d" % i))
    time.sleep(2.5)  # the notifier drops what rm hid
    try:
        rest = f.read()
    except OSError as e:
        rest = ("<%s>" % os.strerror(e.errno)).encode()
sys.stdout.write((first + rest).decode())
PY
)
assert_eq "$(for i in $(seq -w 10); do echo "b$i"; done)" "$got" "rm while a .since file is open: it reads on what it started with"
assert_eq "" "$(ls "$M/rp" | grep -v '^0000000000000000001[5-9]$')" "and rm took them from the directory at once"

sb_remount -o segment_bytes=4096,retention_bytes=8192
mkdir "$M/ret" || sb_die "mkdir ret"
assert_sh_ok 'echo a >> "$1"' "$M/ret/.log"
tt=$(after_t)
assert_sh_ok 'echo b >> "$1"' "$M/ret/.log"
follow retention ret "$tt" 1 'for i in $(seq 2000); do echo "r $i"; done >> "$M/ret/.log" &&
	sb_wait_until "[ ! -e $M/ret/00000000000000000000 ]" $((15 * SB_SLOW)) &&
	sb_wait_until "grep -qx \"r 2000\" $SB_TMP/sf.retention.since" $((10 * SB_SLOW))'

sb_remount -o segment_bytes=4096,cleanup=compact
mkdir "$M/cmp" || sb_die "mkdir cmp"
assert_sh_ok 'echo a >> "$1"' "$M/cmp/.log"
tt=$(after_t)
assert_sh_ok 'echo b >> "$1"' "$M/cmp/.log"
follow compaction cmp "$tt" 1 'for i in $(seq 600); do echo "v$i" > "$M/cmp/.keys/k$((i % 5))" || return 1; done &&
	sb_wait_until "[ \$(ls $M/cmp | wc -l) -lt 300 ]" $((15 * SB_SLOW)) &&
	sb_wait_until "grep -qx v600 $SB_TMP/sf.compaction.since" $((10 * SB_SLOW))'

# opened before any record reaches its time, read only after compaction
# rounds rewrote what came next: it reads what a .log reader opened at
# the same moment reads from there, the values the rounds dropped too
mkdir "$M/late" || sb_die "mkdir late"
assert_sh_ok 'echo a >> "$1"' "$M/late/.log"
tt=$(after_t)
got=$(t python3 - "$M/late" "$tt" <<'PY'
import os, sys, time
d, tt = sys.argv[1], sys.argv[2]
s = open(os.path.join(d, ".since", "@" + tt), "rb", buffering=0)
l = open(os.path.join(d, ".log"), "rb", buffering=0)
assert s.read() == b""
with open(os.path.join(d, ".log"), "ab") as w:
    w.write(b"b\n")
for i in range(1, 601):
    with open(os.path.join(d, ".keys", "k%d" % (i % 5)), "wb") as w:
        w.write(b"v%d\n" % i)
for _ in range(150):  # compaction rounds rewrite the sealed segments
    if len(os.listdir(d)) < 300:
        break
    time.sleep(0.1)
rounds = len(os.listdir(d)) < 300
a, b = s.read(), l.read()
print("ok" if rounds and b.startswith(b"a\n") and a == b[2:] else
      "rounds %s; .since %d bytes from %r; .log %d bytes from %r" % (rounds, len(a), a[:20], len(b), b[:20]))
PY
)
assert_eq ok "$got" "a .since file opened before its first record, read after compaction: the records as they were"
