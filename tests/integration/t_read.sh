#!/usr/bin/env bash
# SPEC §4 Reading: cat of records and of .log, dd at any position, tail -n,
# tail -f / tail -F seeing appends of other processes, cp records out, and
# readers never seeing a partial record.
. "$(dirname "$0")/lib.sh"
sb_mount
M=$SB_MNT
mkdir "$M/r" || sb_die "mkdir"
L=$M/r/.log

# 5,000 lines of varying length (1..400 bytes), deterministic.
python3 - "$SB_TMP/expected" <<'EOF'
import random, sys
rnd = random.Random(7)
with open(sys.argv[1], "wb") as f:
    for i in range(5000):
        n = rnd.randint(0, 390)
        f.write(b"line %05d %s\n" % (i, bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))))
EOF
E=$SB_TMP/expected
assert_sh_ok 'cat "$1" >> "$2"' "$E" "$L"
assert_eq 5000 "$(sb_count "$M/r")" "records after cat >> .log"

case_ "cat of record files returns exactly each payload"
for i in 0 1 2 999 2500 4998 4999; do
	assert_eq "$(sed -n "$((i + 1))p" "$E")" "$(t cat "$M/r/$(rec $i)")" "cat of record $i"
done
out=$(t python3 - "$E" "$M/r" <<'EOF'
import os, sys
lines = open(sys.argv[1], "rb").read().splitlines(keepends=True)
bad = [i for i, l in enumerate(lines) if open(os.path.join(sys.argv[2], "%020d" % i), "rb").read() != l]
print("mismatches", len(bad), bad[:5])
EOF
)
assert_eq "mismatches 0 []" "$out" "every record file equals its line"

case_ "cat .log streams the whole topic"
assert_true 't cmp "$E" "$L"' "cat .log equals what was appended"
assert_eq "$(stat -c %s "$E")" "$(t stat -c %s "$L")" "size of .log"

case_ "dd reads .log at any position"
total=$(stat -c %s "$E")
for spec in "1 12345 100" "1 0 7" "4096 7 3" "512 100 5" "65536 1 2" "1 $((total - 10)) 100" "1 $total 10" "1 $((total + 100)) 10"; do
	read -r bs skip count <<<"$spec"
	t dd if="$L" of="$SB_TMP/dd.out" bs="$bs" skip="$skip" count="$count" status=none; rc=$?
	assert_eq 0 "$rc" "dd bs=$bs skip=$skip count=$count exit status"
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); bs,sk,c=map(int,sys.argv[3:6]); open(sys.argv[2],"wb").write(d[bs*sk:bs*(sk+c)])' "$E" "$SB_TMP/dd.exp" "$bs" "$skip" "$count"
	assert_true 'cmp -s "$SB_TMP/dd.exp" "$SB_TMP/dd.out"' "dd bs=$bs skip=$skip count=$count: bytes equal"
done
t dd if="$L" of="$SB_TMP/dd.out" iflag=skip_bytes,count_bytes skip=777777 count=3333 bs=65536 status=none
assert_eq "$(tail -c +777778 "$E" | head -c 3333 | md5sum)" "$(md5sum <"$SB_TMP/dd.out")" "dd skip_bytes=777777 count_bytes=3333"
assert_eq OK "$(pyerr '
import random
d = open(sys.argv[3], "rb").read()
fd = os.open(sys.argv[2], os.O_RDONLY)
rnd = random.Random(1)
for _ in range(300):
    p = rnd.randrange(0, len(d) + 10); n = rnd.randrange(1, 70000)
    if os.pread(fd, n, p) != d[p:p + n]:
        raise OSError(errno.EIO, "pread mismatch at %d+%d" % (p, n))
' "$L" "$E")" "300 random preads of .log"

case_ "an append is readable at once by a reader that has .log open"
out=$(t python3 - "$L" <<'EOF'
import os, subprocess, sys
log = sys.argv[1]
fd = os.open(log, os.O_RDONLY)
end = os.fstat(fd).st_size
os.lseek(fd, end, 0)
got = []
for i in range(5):
    subprocess.run(["sh", "-c", 'echo "at-once-%d" >> "$1"' % i, "sh", log], check=True)
    st = os.fstat(fd).st_size
    got.append("%d:%s" % (st - end, os.read(fd, 4096).decode()))
    end = st
print(" ".join(x.strip() for x in got))
EOF
)
assert_eq "10:at-once-0 10:at-once-1 10:at-once-2 10:at-once-3 10:at-once-4" "$out" "fstat and read right after each append by another process"
printf 'at-once-%d\n' 0 1 2 3 4 >>"$E"

case_ "tail -n reads the end of .log"
for n in 1 10 100; do
	assert_eq "$(tail -n "$n" "$E")" "$(t tail -n "$n" "$L")" "tail -n $n"
done
assert_eq "$(tail -c 100 "$E" | md5sum)" "$(t tail -c 100 "$L" | md5sum)" "tail -c 100"

# follow_test FLAG: tail FLAG .log prints appends by other processes within ~2 s.
follow_test() {
	local flag=$1 out=$SB_TMP/tail$1.out pid i
	: >"$out"
	local last10
	last10=$(t cat "$L" | tail -n 10)
	# (-s 0.2: tail looks every 0.2 s, not every second; the deadlines
	# below are what the mount must meet)
	timeout 60 tail -s 0.2 "$flag" "$L" >"$out" 2>"$out.err" &
	pid=$!
	sb_wait_until '[ "$(wc -l <"$out")" -ge 10 ]' 5 || assert_fail_now "tail $flag: no initial 10 lines"
	assert_eq "$last10" "$(head -n 10 "$out")" "tail $flag: starts with the last 10 lines"
	for i in 1 2 3; do
		tsh 'echo "followed-'"$flag"'-$1" >> "$2"' "$i" "$L"
		sb_wait_until 'grep -q "^followed-'"$flag"'-$i\$" "$out"' $((2 * SB_SLOW)) ||
			assert_fail_now "tail $flag: the append 'followed$flag-$i' by another process not seen within $((2 * SB_SLOW)) s (tail printed: $(tail -c 200 "$out"); stderr: $(cat "$out.err"))"
		pass_
	done
	# a whole-file record, appended by cp
	echo "copied-in$flag" >"$SB_TMP/cpin"
	t cp "$SB_TMP/cpin" "$M/r/cpin$flag"
	sb_wait_until 'grep -q "^copied-in'"$flag"'\$" "$out"' $((2 * SB_SLOW)) ||
		assert_fail_now "tail $flag: a record appended by cp not seen within $((2 * SB_SLOW)) s"
	pass_
	# a batch of 1000 lines arrives whole and in order
	seq -f "batch$flag-%04g" 1 1000 >"$SB_TMP/batch"
	t cp "$SB_TMP/batch" "$SB_TMP/batch.copy"
	tsh 'cat "$1" >> "$2"' "$SB_TMP/batch" "$L"
	sb_wait_until 'grep -q "^batch'"$flag"'-1000\$" "$out"' $((3 * SB_SLOW)) ||
		assert_fail_now "tail $flag: a batch of 1000 lines not seen"
	assert_eq "$(cat "$SB_TMP/batch")" "$(grep "^batch$flag-" "$out")" "tail $flag: the batch in order, whole"
	assert_true '! grep -q "truncated" "$out.err"' "tail $flag: no 'file truncated' ($(cat "$out.err"))"
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

case_ "tail -f prints records appended by another process"
follow_test -f
case_ "tail -F prints records appended by another process"
follow_test -F

case_ "cp records out"
mkdir -p "$SB_TMP/out1" "$SB_TMP/out2"
assert_ok cp "$M/r/$(rec 10)" "$M/r/$(rec 11)" "$M/r/$(rec 4999)" "$SB_TMP/out1/"
assert_eq "$(sed -n 11,12p "$E")" "$(cat "$SB_TMP/out1/$(rec 10)" "$SB_TMP/out1/$(rec 11)")" "records 10 and 11 copied out"
assert_ok cp -r "$M/r" "$SB_TMP/out2/"
n=$(sb_count "$M/r")
assert_eq "$n" "$(ls -A "$SB_TMP/out2/r" | wc -l)" "cp -r copies each record once, no .log"
assert_true '[ ! -e "$SB_TMP/out2/r/.log" ]' "cp -r does not copy .log"
assert_true 'head -c "$(stat -c %s "$E")" <(cat "$SB_TMP"/out2/r/*) | cmp -s - "$E"' "the copied records concatenate to the log"
assert_true 't diff -r "$M/r" "$SB_TMP/out2/r" >/dev/null' "diff -r of the topic and its copy"

case_ "records up to max_record_bytes (1 MiB by default), whole files and lines"
head -c 1048576 /dev/urandom >"$SB_TMP/mib"
n=$(sb_count "$M/r")
assert_ok cp "$SB_TMP/mib" "$M/r/mib"
assert_true 't cmp "$SB_TMP/mib" "$M/r/$(rec $n)"' "a 1 MiB file is one record, intact"
{ cat "$SB_TMP/mib"; echo x; } >"$SB_TMP/mib1"
assert_fail_with EFBIG cp "$SB_TMP/mib1" "$M/r/mib1"
{ head -c 1048575 /dev/zero | tr '\0' L; echo; } >"$SB_TMP/mibline"
assert_sh_ok 'cat "$1" >> "$2"' "$SB_TMP/mibline" "$L"
assert_true 't cmp "$SB_TMP/mibline" "$M/r/$(rec $((n + 1)))"' "a 1 MiB line is one record"
assert_eq $((n + 2)) "$(sb_count "$M/r")" "records after the 1 MiB ones"
cat "$SB_TMP/mib" "$SB_TMP/mibline" >>"$E"

case_ "a reader never sees a partial record"
mkdir "$M/big"
# a writer appends 200 KB lines, readers cat .log and stat it meanwhile
# (one python process, one write() per line: 60 interpreter starts took
# longer than the deadline on a loaded machine)
t python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(1, 61):
    line = b"%06d" % i + b"b" * 204793 + b"\n"
    assert os.write(fd, line) == len(line)
    time.sleep(0.05)
os.close(fd)' "$M/big/.log" &
wpid=$!
bad=0 reads=0
while kill -0 "$wpid" 2>/dev/null; do
	t cat "$M/big/.log" >"$SB_TMP/snap"
	reads=$((reads + 1))
	sz=$(stat -c %s "$SB_TMP/snap")
	if [ $((sz % 204800)) -ne 0 ]; then
		bad=$((bad + 1)); sb_msg "partial read: $sz bytes"
	fi
	# a listing taken during appends: every offset from the first to the last, once, in order
	t ls -f "$M/big" | grep -v '^\.' >"$SB_TMP/lsf"
	if [ -s "$SB_TMP/lsf" ] && ! cmp -s "$SB_TMP/lsf" <(seq -f '%020g' "$((10#$(head -1 "$SB_TMP/lsf")))" "$((10#$(tail -1 "$SB_TMP/lsf")))"); then
		bad=$((bad + 1)); sb_msg "ls -f during appends is not a contiguous range: $(head -c 300 "$SB_TMP/lsf")"
	fi
	lst=$(tail -1 "$SB_TMP/lsf")
	if [ -n "$lst" ] && [ "$(t stat -c %s "$M/big/$lst")" != 204800 ]; then
		bad=$((bad + 1)); sb_msg "partial record file $lst"
	fi
done
wait "$wpid"; rc=$?
assert_eq 0 "$rc" "the big writer succeeded"
assert_eq 0 "$bad" "partial records or broken listings seen by $reads readers"
assert_eq 60 "$(sb_count "$M/big")" "60 big records"

case_ "tail -n reads only near the end of a 12 MB .log"
if command -v strace >/dev/null; then
	t strace -f -e trace=read -o "$SB_TMP/strace.out" tail -n 2 "$M/big/.log" >"$SB_TMP/tail2"
	assert_eq 2 "$(wc -l <"$SB_TMP/tail2")" "tail -n 2 of big/.log"
	bytes=$(awk -F'= ' '/^[0-9]+ +read\(3,/ { s += $NF } END { print s + 0 }' "$SB_TMP/strace.out")
	assert_true '[ "$bytes" -gt 0 ] && [ "$bytes" -lt 1048576 ]' "tail -n 2 read $bytes bytes of a 12 MB .log (it should seek to the end)"
else
	assert_fail_now "strace is missing (tools/packages.txt)"
fi
assert_eq $((60 * 204800)) "$(t stat -c %s "$M/big/.log")" "size of big/.log"

case_ "a mount does not keep the large last record it checked mapped (RssFile)"
# The mount's check of each segment's tail reads it through the mapping; an
# 80 MiB last record stayed resident in the daemon (RssFile 83 MB; the
# 256 MiB one of the report: 264 MB after the mount, before any read).
sb_umount
sb_mount_fg -o max_record_bytes=128M
mkdir "$M/rss" || sb_die "mkdir"
head -c $((80 << 20)) /dev/urandom >"$SB_TMP/rss"
cp "$SB_TMP/rss" "$M/rss/f" || sb_die "cp"
sb_umount
sb_mount_fg -o max_record_bytes=128M
file_kb=$(awk '/^RssFile:/ { print $2 }' "/proc/$SB_PID/status")
assert_true '[ "$file_kb" -lt $((32 * 1024)) ]' "the daemon's RssFile after the mount: $file_kb kB (an 80 MiB record was checked)"
assert_true 'cmp -s "$SB_TMP/rss" "$M/rss/$(rec 0)"' "the record reads back as written"
rm -f "$SB_TMP/rss"
