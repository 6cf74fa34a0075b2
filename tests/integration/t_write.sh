#!/usr/bin/env bash
# SPEC §3 Writing: lines through .log (>> and >, several lines, partial
# lines, no interleaving), whole files by creating one (key, name gone,
# digits names), EFBIG, EPERM for writes to records / truncate / rename /
# link / the middle of .log, fsync.
. "$(dirname "$0")/lib.sh"
sb_mount -o max_record_bytes=1024
M=$SB_MNT
mkdir "$M/w" || sb_die "mkdir"
L=$M/w/.log

# The records of a topic, one line each, as "OFFSET<TAB>%q of the payload".
records() {
	t python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    with open(os.path.join(d, n), 'rb') as f:
        print(n, repr(f.read()), sep='\t')
EOF
}

case_ "echo >> .log appends one record"
assert_sh_ok 'echo hello >> "$1"' "$L"
assert_eq 1 "$(sb_count "$M/w")" "records after one echo"
assert_file_eq "$M/w/00000000000000000000" $'hello\n' "record 0"

case_ "echo > .log appends too: the log is never truncated by opening it"
assert_sh_ok 'echo world > "$1"' "$L"
assert_file_eq "$L" $'hello\nworld\n' ".log after echo >"
assert_sh_ok ': > "$1"' "$L"
assert_file_eq "$L" $'hello\nworld\n' ".log after : > (opening with O_TRUNC)"
assert_eq 2 "$(sb_count "$M/w")" "records after echo > and : >"

case_ "printf of several lines appends one record per line"
assert_sh_ok 'printf "a\nbb\nccc\n" >> "$1"' "$L"
assert_eq 5 "$(sb_count "$M/w")" "records after printf of 3 lines"
assert_file_eq "$M/w/00000000000000000002" $'a\n' "record 2"
assert_file_eq "$M/w/00000000000000000003" $'bb\n' "record 3"
assert_file_eq "$M/w/00000000000000000004" $'ccc\n' "record 4"
# one write(2) of several lines
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND); os.write(fd, b"x1\nx2\nx3\nx4\n"); os.close(fd)' "$L")" "one write of 4 lines"
assert_eq 9 "$(sb_count "$M/w")" "records after one write of 4 lines"
assert_file_eq "$M/w/00000000000000000008" $'x4\n' "record 8"

case_ "an empty line is a record too; echo -n appends its bytes at close"
mkdir "$M/e"
assert_sh_ok 'printf "a\n\nb\n" >> "$1"' "$M/e/.log"
assert_eq 3 "$(sb_count "$M/e")" "records of a, empty line, b"
assert_file_eq "$M/e/00000000000000000001" $'\n' "the empty line's record"
assert_sh_ok 'echo -n tail-no-newline >> "$1"' "$M/e/.log"
assert_file_eq "$M/e/00000000000000000003" 'tail-no-newline' "echo -n: the bytes without a newline, appended at close"

case_ "touch of a new name appends an empty record"
assert_ok touch "$M/e/empty"
assert_eq 5 "$(sb_count "$M/e")" "records after touch"
assert_eq "0 0" "$(t stat -c '%s %b' "$M/e/00000000000000000004")" "size and blocks of the empty record"
assert_eq empty "$(t getfattr --absolute-names --only-values -n user.streambus.key "$M/e/00000000000000000004" 2>&1)" "key of the touched name"
assert_fail_with ENOENT stat "$M/e/empty"

case_ "a trailing partial line waits for the rest from the same open file"
out=$(t python3 - "$L" "$M/w" <<'EOF'
import os, sys
log, d = sys.argv[1], sys.argv[2]
n0 = len(os.listdir(d))
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"par")
n1 = len(os.listdir(d))
os.write(fd, b"tial\nne")
n2 = len(os.listdir(d))
os.write(fd, b"xt")
n3 = len(os.listdir(d))
os.close(fd)
n4 = len(os.listdir(d))
print(n1 - n0, n2 - n0, n3 - n0, n4 - n0)
EOF
)
assert_eq "0 1 1 2" "$out" "records added after 'par', 'tial\\nne', 'xt', close"
assert_file_eq "$M/w/00000000000000000009" $'partial\n' "record 9 (joined partial line)"
assert_file_eq "$M/w/00000000000000000010" 'next' "record 10 (the partial line appended at close)"

case_ "a partial line is not interleaved with another writer's lines"
out=$(t python3 - "$L" <<'EOF'
import os, sys
log = sys.argv[1]
a = os.open(log, os.O_WRONLY | os.O_APPEND)
b = os.open(log, os.O_WRONLY | os.O_APPEND)
os.write(a, b"AAA-first-")
os.write(b, b"BBB-whole\n")
os.write(a, b"AAA-rest\n")
os.write(b, b"BBB-part-")
os.close(a)
os.write(b, b"BBB-end\n")
os.close(b)
print("done")
EOF
)
assert_eq done "$out" "two writers"
assert_eq "$(printf '%s\n' $'00000000000000000011\tb\'BBB-whole\\n\'' $'00000000000000000012\tb\'AAA-first-AAA-rest\\n\'' $'00000000000000000013\tb\'BBB-part-BBB-end\\n\'')" \
	"$(records "$M/w" | tail -3)" "records of two writers with partial lines"

case_ "cp a file in: one record keyed by the file's name; the name is gone after close"
head -c 1000 /dev/urandom >"$SB_TMP/photo.jpg"  # under max_record_bytes=1024
printf 'line1\nline2\nline3\n' >"$SB_TMP/multi.txt"
n=$(sb_count "$M/w")
assert_ok cp "$SB_TMP/photo.jpg" "$M/w/"
assert_ok cp "$SB_TMP/multi.txt" "$M/w/"
assert_eq $((n + 2)) "$(sb_count "$M/w")" "two records for two files (a file of 3 lines is one record)"
assert_true 't cmp "$SB_TMP/photo.jpg" "$M/w/$(rec $n)"' "binary content of the copied-in record"
assert_true 't cmp "$SB_TMP/multi.txt" "$M/w/$(rec $((n + 1)))"' "the 3-line file is one record"
assert_eq photo.jpg "$(t getfattr --absolute-names --only-values -n user.streambus.key "$M/w/$(rec $n)" 2>&1)" "key of the copied-in record"
assert_fail_with ENOENT stat "$M/w/photo.jpg"
assert_true '! t ls -a "$M/w" | grep -q photo' "the name is not listed after close"

case_ "echo hi > topic/msg appends a keyed record"
n=$(sb_count "$M/w")
assert_sh_ok 'echo hi > "$1/msg"' "$M/w"
assert_file_eq "$M/w/$(rec $n)" $'hi\n' "record of echo > msg"
assert_eq msg "$(t getfattr --absolute-names --only-values -n user.streambus.key "$M/w/$(rec $n)" 2>&1)" "key msg"
assert_fail_with ENOENT stat "$M/w/msg"

case_ "the new name is visible while it is open, and appended at close"
n=$(sb_count "$M/w")
out=$(t python3 - "$M/w" <<'EOF'
import os, sys
d = sys.argv[1]
p = os.path.join(d, "pending.bin")
n0 = len(os.listdir(d))
f = open(p, "wb")
f.write(b"pending-payload")
f.flush()
visible = os.path.exists(p)
listed = "pending.bin" in os.listdir(d) and os.stat(p).st_size == 15
n1 = len([x for x in os.listdir(d) if x[0].isdigit()])
f.close()
gone = not os.path.exists(p) and "pending.bin" not in os.listdir(d)
n2 = len([x for x in os.listdir(d) if x[0].isdigit()])
print(visible, listed, n1 - n0, gone, n2 - n0)
EOF
)
assert_eq "True True 0 True 1" "$out" "visible and listed (ls, with its size) while open / no record yet / gone after close / one record"
assert_file_eq "$M/w/$(rec $n)" 'pending-payload' "the record appended at close"

case_ "right after close: the new name is gone and its record listed (RELEASE comes later)"
# close(2) returns after FLUSH, which appends; the kernel sends RELEASE
# afterwards, so a stat or ls right after close may come first: it must see
# the record, not the name. Six writers at once make a late RELEASE likely.
# Each does SB_WRITE_RACE_ROUNDS rounds (default 1000, 200 under a
# sanitizer; 20000 for a long run): four in python, of create+close of a
# random kind (written, touched, a digits name, a temporary name renamed),
# then at once stat, ls, cat, and rm of the record (so that the listing
# stays short); two in bash, `echo > NAME` then `[ -e NAME ]` (builtins:
# bash opens, dup2s and closes the file before it writes).
cat >"$SB_TMP/race.py" <<'EOF'
import errno, os, random, sys, time
d, rounds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.mkdir(d)
rnd = random.Random(seed)
bad = []
nxt = 0
def rec(o):
    return "%020d" % o
def gone(i, kind, name):
    try:
        os.stat(os.path.join(d, name))
        bad.append("%d %s: stat finds %s after its close" % (i, kind, name))
    except OSError as e:
        if e.errno != errno.ENOENT:
            bad.append("%d %s: stat %s: %s" % (i, kind, name, e))
def record(i, kind, data):
    global nxt
    ls = os.listdir(d)
    try:
        if ls != [rec(nxt)]:
            bad.append("%d %s: ls lists %s, not [%s]" % (i, kind, ls, rec(nxt)))
        else:
            with open(os.path.join(d, rec(nxt)), "rb") as f:
                got = f.read()
            if got != data:
                bad.append("%d %s: record %d holds %r, not %r" % (i, kind, nxt, got, data))
    except OSError as e:
        bad.append("%d %s: reading record %d: %s" % (i, kind, nxt, e))
    if bad and bad[-1].startswith("%d " % i):
        time.sleep(0.2) # let the late RELEASE land, then start clean
        ls = sorted(os.listdir(d))
    for n in ls:
        os.unlink(os.path.join(d, n))
        nxt = int(n) + 1
for i in range(rounds):
    kind = rnd.choice(["write", "write", "touch", "digits", "temp"])
    data = b"" if kind == "touch" else b"v%d-%d" % (seed, i)
    name = {"digits": rec(nxt), "temp": ".n%d.tmp" % i}.get(kind, "n%d" % i)
    try:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
            if kind == "touch":
                os.utime(f.fileno()) # appended at close with no byte written
    except OSError as e:
        bad.append("%d %s: writing %s: %s" % (i, kind, name, e))
        time.sleep(0.2)
        continue
    if kind == "temp":
        # held under its temporary name until renamed (SPEC §3)
        try:
            os.stat(os.path.join(d, name))
        except OSError as e:
            bad.append("%d temp: stat %s after its close: %s" % (i, name, e))
        if os.listdir(d) != [name]:
            bad.append("%d temp: ls lists %s, not [%s], before the rename" % (i, os.listdir(d), name))
        os.rename(os.path.join(d, name), os.path.join(d, "n%d" % i))
        gone(i, kind, name)
        name = "n%d" % i
    if kind != "digits":
        gone(i, kind, name)
    record(i, kind, data)
kinds = {}
for b in bad:
    k = b.split()[1].rstrip(":")
    kinds[k] = kinds.get(k, 0) + 1
print("ok" if not bad else "%d bad of %d %s: %s" % (len(bad), rounds, kinds, "; ".join(bad[:3])))
EOF
rounds=${SB_WRITE_RACE_ROUNDS:-1000}
[ -n "$SB_ASAN" ] && rounds=${SB_WRITE_RACE_ROUNDS:-200}
for w in 0 1 2 3; do
	SB_T=$((SB_T + rounds / 50)) t python3 "$SB_TMP/race.py" "$M/race$w" "$rounds" "$w" >"$SB_TMP/race.$w" 2>&1 &
done
for w in 4 5; do
	SB_T=$((SB_T + rounds / 50)) tsh 'd=$1 n=$2 bad=0
		mkdir "$d" || exit 1
		for ((i = 0; i < n; i++)); do
			echo "v$i" >"$d/n$i" || exit 1
			printf -v r %020d $i
			if [ -e "$d/n$i" ] || ! [ -e "$d/$r" ]; then
				bad=$((bad + 1))
				[ $bad -le 3 ] && printf "n%d still there or %s not yet; " $i $r
			fi
		done
		[ $bad -eq 0 ] && echo ok || echo "$bad bad of $n"' "$M/race$w" "$rounds" >"$SB_TMP/race.$w" 2>&1 &
done
wait
for w in 0 1 2 3 4 5; do
	assert_eq "ok" "$(cat "$SB_TMP/race.$w")" "writer $w: $rounds files, each its record and not its name right after close"
done

case_ "a digits name equal to the next offset appends at that offset"
n=$(sb_count "$M/w")
echo restored >"$SB_TMP/r.txt"
assert_ok cp "$SB_TMP/r.txt" "$M/w/$(rec $n)"
assert_file_eq "$M/w/$(rec $n)" $'restored\n' "record at the next offset"
assert_eq $((n + 1)) "$(sb_count "$M/w")" "one more record"

case_ "any other digits name is refused and appends nothing"
n=$(sb_count "$M/w")
size=$(t stat -c %s "$L")
assert_true '! t cp "$SB_TMP/r.txt" "$M/w/$(rec $((n + 5)))" 2>/dev/null' "cp to a future offset fails"
assert_true '! t cp "$SB_TMP/r.txt" "$M/w/$(rec 3)" 2>/dev/null' "cp to an existing offset fails"
assert_true '! t cp "$SB_TMP/r.txt" "$M/w/$(rec $((n - 1)))" 2>/dev/null' "cp to the last offset fails"
assert_true '! t cp "$SB_TMP/r.txt" "$M/w/99999999999999999999" 2>/dev/null' "cp to a huge offset fails"
assert_eq "$n" "$(sb_count "$M/w")" "nothing appended by refused digits names"
assert_eq "$size" "$(t stat -c %s "$L")" ".log size unchanged by refused digits names"
assert_file_eq "$M/w/$(rec 3)" $'bb\n' "record 3 unchanged"

case_ "in an empty topic a digits name may set the first offset"
mkdir "$M/fresh"
assert_ok cp "$SB_TMP/r.txt" "$M/fresh/$(rec 5)"
assert_eq "$(rec 5)" "$(t ls "$M/fresh")" "first record at offset 5"
assert_sh_ok 'echo next >> "$1/fresh/.log"' "$M"
assert_file_eq "$M/fresh/$(rec 6)" $'next\n' "the next append gets offset 6"

case_ "a record over max_record_bytes fails with EFBIG and appends nothing"
n=$(sb_count "$M/w")
size=$(t stat -c %s "$L")
big=$(printf '%01500d' 1)
assert_sh_fail_with EFBIG 'echo "$2" >> "$1"' "$L" "$big"
ok1023=$(printf '%01023d' 2)   # with its newline exactly 1024 bytes
assert_sh_ok 'echo "$2" >> "$1"' "$L" "$ok1023"
assert_eq 1024 "$(t stat -c %s "$M/w/$(rec $n)")" "a record of exactly max_record_bytes is accepted"
n=$((n + 1)); size=$((size + 1024))
assert_sh_fail_with EFBIG 'printf "%s\n" "$2" >> "$1"' "$L" "${ok1023}x"
assert_eq EFBIG "$(pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND); os.write(fd, b"small-ok\n" + b"y" * 1500 + b"\nafter\n")' "$L")" "one write with an oversize line among good ones"
assert_eq EFBIG "$(pyerr '
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
try:
    os.write(fd, b"z" * 1500)
finally:
    os.close(fd)' "$L")" "an oversize partial line (at write or at close)"
head -c 2000 /dev/urandom >"$SB_TMP/big.bin"
assert_fail_with EFBIG cp "$SB_TMP/big.bin" "$M/w/big.bin"
assert_fail_with ENOENT stat "$M/w/big.bin"
# growing a new file past the limit by ftruncate (truncate -s, cp --sparse,
# dd conv=sparse): refused, and nothing of it is appended at the close
# (before: an empty or cut record)
assert_fail_with EFBIG truncate -s 2000 "$M/w/grown"
{ printf HEADER; head -c 1500 /dev/zero; } >"$SB_TMP/sparse.bin"
t cp --sparse=always "$SB_TMP/sparse.bin" "$M/w/sparse" 2>/dev/null && assert_fail_now "cp --sparse=always of 1506 bytes succeeded"
pass_
assert_eq EFBIG "$(pyerr '
fd = os.open(sys.argv[2] + "/ftr", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"head")
try:
    os.ftruncate(fd, 5000)
finally:
    os.close(fd)' "$M/w")" "ftruncate past the limit fails, and so does the close"
assert_eq "$n" "$(sb_count "$M/w")" "no record appended by the failed writes"
assert_eq "$size" "$(t stat -c %s "$L")" ".log size unchanged by the failed writes"
assert_true '! t grep -q small-ok "$L"' "no part of the failed write is in .log"

case_ "one write(2) the kernel splits, a line over the limit across the split: the close fails"
# The kernel hands a big write to the daemon in parts and returns a short
# count when a later part fails: the line whose start an earlier part
# carried is dropped, and the close says so (EFBIG), not success.
mkdir "$M/split" || sb_die "mkdir"
assert_eq EFBIG "$(pyerr '
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
buf = bytearray()
while len(buf) < (1 << 20) - 1500: # a request ends at 1 MiB (128 KiB x 8 too)
    buf += b"a" * 999 + b"\n"
buf += b"b" * ((1 << 20) - 500 - len(buf) - 1) + b"\n"
buf += b"y" * 2000 + b"\n" # 500 bytes of it in the first request(s)
import mmap
m = mmap.mmap(-1, len(buf)) # page-aligned: the requests end at those places
m[:] = bytes(buf)
try:
    os.write(fd, m)
finally:
    os.close(fd)' "$M/split/.log")" "a short write whose line was dropped: EFBIG at the close"
assert_true '! t grep -q yyy "$M/split/.log"' "no part of the long line is in .log"
t rm -r "$M/split" || assert_fail_now "rm -r split"
# The same, then a last line without its newline: the close appends it
# and still says that the long line was dropped (before: the close
# appended the tail and returned success).
mkdir "$M/split2" || sb_die "mkdir"
assert_eq EFBIG "$(pyerr '
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
buf = bytearray()
while len(buf) < (1 << 20) - 1500:
    buf += b"a" * 999 + b"\n"
buf += b"b" * ((1 << 20) - 500 - len(buf) - 1) + b"\n"
buf += b"y" * 2000 + b"\n"
import mmap
m = mmap.mmap(-1, len(buf))
m[:] = bytes(buf)
try:
    os.write(fd, m)
    os.write(fd, b"tail-without-newline")
finally:
    os.close(fd)' "$M/split2/.log")" "a dropped line, then a partial last line: EFBIG at the close"
assert_true '! t grep -q yyy "$M/split2/.log"' "no part of the long line is in .log"
assert_eq "tail-without-newline" "$(t tail -c 20 "$M/split2/.log")" "the partial last line appended at the close"
t rm -r "$M/split2" || assert_fail_now "rm -r split2"

case_ "a line over the limit ending in a later request of a write: a write-all loop appends no piece of it"
# The kernel splits a big write(2) at request boundaries (page-aligned
# buffers: at 1 MiB multiples) and returns a short count when a later
# request fails; a write-all loop (Python's, dd's) sends the rest again.
# That rest must not become a record of its own (before: the long line's
# end was appended as a line). Generated: where the long line starts before
# a boundary, how long it is, the good lines around it (seed printed).
seed=${SB_WRITE_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "t_write: write-all seed $seed"
out=$(t python3 - "$M" "$seed" <<'PYEOF'
import mmap, os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
MAX, REQ = 1024, 1 << 20  # requests end at 1 MiB (the kernel's max_write here)
bad = []
for r in range(6):
    d = os.path.join(root, "wa%d" % r)
    os.mkdir(d)
    good, buf = [], bytearray()
    start = REQ - rnd.randrange(1, MAX)  # the long line starts this far before the boundary
    while start - len(buf) > MAX:
        line = bytes([97 + rnd.randrange(26)]) * rnd.randrange(0, MAX - 1) + b"\n"
        good.append(line); buf += line
    line = b"p" * (start - len(buf) - 1) + b"\n"  # at most MAX bytes
    good.append(line); buf += line
    buf += b"L" * rnd.randrange(MAX, 3 * MAX) + b"\n"  # over the limit, across the boundary
    for _ in range(rnd.randrange(1, 30)):
        line = bytes([97 + rnd.randrange(26)]) * rnd.randrange(0, MAX - 1) + b"\n"
        good.append(line); buf += line
    m = mmap.mmap(-1, len(buf)); m[:] = bytes(buf)
    fd = os.open(os.path.join(d, ".log"), os.O_WRONLY | os.O_APPEND)
    mv, at, err = memoryview(m), 0, None
    try:
        while at < len(buf):               # write-all, as Python's own
            at += os.write(fd, mv[at:])
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    mv.release(); m.close()
    got = open(os.path.join(d, ".log"), "rb").read()
    if err != 27:
        bad.append("round %d: write-all then close gave %s, not EFBIG" % (r, err))
    if got != b"".join(good):
        pieces = [l for l in got.split(b"\n") if l.startswith(b"L")]
        bad.append("round %d: .log is not the good lines (%d bytes for %d; pieces of the long line: %s)"
                   % (r, len(got), len(b"".join(good)), [len(p) for p in pieces]))
print("ok" if not bad else "; ".join(bad[:3]))
PYEOF
)
assert_eq ok "$out" "the good lines, no piece of the long one, EFBIG (seed $seed)"

case_ "writing to a record file: EPERM (or EACCES)"
r=$M/w/$(rec 2)
assert_sh_fail_with 'EPERM|EACCES' 'echo x >> "$1"' "$r"
assert_sh_fail_with 'EPERM|EACCES' 'echo x > "$1"' "$r"
assert_fail_with 'EPERM|EACCES' dd if=/dev/zero of="$r" bs=1 count=1 conv=notrunc status=none
assert_true '[[ "$(pyerr "open(sys.argv[2], \"r+b\")" "$r")" =~ ^(EPERM|EACCES)$ ]]' "open O_RDWR of a record"
assert_fail_with 'EPERM|EACCES' cp "$SB_TMP/r.txt" "$r"
assert_file_eq "$r" $'a\n' "record 2 unchanged"

case_ "truncate: EPERM"
assert_fail_with 'EPERM|EACCES' truncate -s 0 "$r"
assert_fail_with 'EPERM|EACCES' truncate -s 0 "$L"
assert_fail_with 'EPERM|EACCES' truncate -s 3 "$L"
assert_fail_with 'EPERM|EACCES' truncate -s +100 "$L"
assert_eq "$size" "$(t stat -c %s "$L")" ".log size unchanged by truncate"
assert_file_eq "$r" $'a\n' "record 2 unchanged by truncate"

case_ "rename and link: EPERM"
assert_fail_with EPERM mv "$r" "$M/w/renamed"
assert_fail_with EPERM mv "$r" "$M/w/$(rec 999)"
assert_fail_with EPERM mv "$L" "$M/w/log2"
assert_fail_with EPERM ln "$r" "$M/w/linked"
assert_fail_with EPERM ln "$L" "$M/w/linked"
assert_eq "$n" "$(sb_count "$M/w")" "records unchanged by rename/link"
assert_file_eq "$r" $'a\n' "record 2 still there"

case_ "writing into the middle of .log: EPERM"
assert_fail_with EPERM dd if=/dev/zero of="$L" bs=1 seek=3 count=1 conv=notrunc status=none
assert_eq EPERM "$(pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY); os.lseek(fd, 5, 0); os.write(fd, b"mid\n")' "$L")" "pwrite into the middle of .log"
assert_eq "$size" "$(t stat -c %s "$L")" ".log size unchanged"
assert_eq $'hello\nworld\na' "$(t head -n 3 "$L")" "start of .log unchanged"

case_ "fsync on .log and on a record succeeds"
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND); os.write(fd, b"synced\n"); os.fsync(fd); os.close(fd)' "$L")" "fsync of .log"
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$r")" "fsync of a record"
assert_ok sync "$L"

case_ "four processes append 2,000 lines each at once: 8,000 whole records"
mkdir "$M/conc"
C=$M/conc/.log
touch "$SB_TMP/go.wait"
# writer 0, 1: bash echo per line on one open file (>> and >); 2: python, random-sized
# chunks (lines split across writes); 3: python, one write(2) per line.
for w in 0 1; do
	# writer 0 opens with >> (O_APPEND), writer 1 with > (O_TRUNC, no O_APPEND)
	redir='>>'; [ $w = 1 ] && redir='>'
	tsh 'exec 3'"$redir"'"$1"; while [ -e "$3" ]; do sleep 0.01; done
	     for i in $(seq -w 0 1999); do echo "w$2 i$i $4 end" >&3; done' "$C" "$w" "$SB_TMP/go.wait" "$(printf -- '-%.0s' $(seq 76))" &
done
t python3 - "$C" 2 "$SB_TMP/go.wait" chunks <<'EOF' &
import os, sys, time, random
log, w, go, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
while os.path.exists(go):
    time.sleep(0.01)
data = b"".join(b"w%s i%04d " % (w.encode(), i) + b"-" * 76 + b" end\n" for i in range(2000))
rnd = random.Random(42)
p = 0
while p < len(data):
    n = rnd.randint(1, 300)
    os.write(fd, data[p:p + n])
    p += n
os.close(fd)
EOF
t python3 - "$C" 3 "$SB_TMP/go.wait" <<'EOF' &
import os, sys, time
log, w, go = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
while os.path.exists(go):
    time.sleep(0.01)
for i in range(2000):
    line = b"w%s i%04d " % (w.encode(), i) + b"-" * 76 + b" end\n"
    assert os.write(fd, line) == len(line)
os.close(fd)
EOF
sleep 0.3
rm -f "$SB_TMP/go.wait"
wrc=0
for j in $(jobs -p); do wait "$j" || wrc=$?; done
assert_eq 0 "$wrc" "all four writers succeeded"
assert_eq 8000 "$(sb_count "$M/conc")" "8,000 records"
# (each record read once: 8,000 opens through the mount, twice took more
# than the 20 s deadline at nice 19 on a loaded machine; 60 s for a hang)
out=$(SB_T=60 t python3 - "$M/conc" <<'EOF'
import os, re, sys
d = sys.argv[1]
pat = re.compile(rb"^w([0-3]) i(\d{4}) -{76} end\n$")
names = sorted(x for x in os.listdir(d))
bad = 0
seen = {w: [] for w in range(4)}
recs = []
for n in names:
    with open(os.path.join(d, n), "rb") as f:
        b = f.read()
    recs.append(b)
    m = pat.match(b)
    if not m:
        bad += 1
        if bad < 4:
            print("bad record", n, b[:200])
        continue
    seen[int(m.group(1))].append(int(m.group(2)))
for w in range(4):
    if seen[w] != list(range(2000)):
        print("writer", w, "has", len(seen[w]), "records, in order:", seen[w] == sorted(seen[w]))
with open(os.path.join(d, ".log"), "rb") as f:
    log = f.read()
if log != b"".join(recs):
    print(".log is not the concatenation of the records")
print("bad", bad)
EOF
)
assert_eq "bad 0" "$out" "every record is one whole line, each writer's lines all there and in order"

case_ "cat FILE > .log (no O_APPEND, sequential positions) appends every line"
mkdir "$M/gt"
seq -f "gt-%05g" 1 20000 >"$SB_TMP/gt"
assert_sh_ok 'cat "$1" > "$2"' "$SB_TMP/gt" "$M/gt/.log"
assert_sh_ok 'cat "$1" > "$2"' "$SB_TMP/gt" "$M/gt/.log"
assert_eq 40000 "$(sb_count "$M/gt")" "records after two cat > .log of 20,000 lines"
assert_true 't cmp <(cat "$SB_TMP/gt" "$SB_TMP/gt") "$M/gt/.log"' ".log holds both copies, nothing truncated"

case_ "lines split across write requests by the kernel are not interleaved"
sb_remount
mkdir "$M/split"
# each write(2) is 2 MiB holding 3 lines of ~700 KB: the kernel cuts it into
# 1 MiB requests in the middle of a line, while the other writer does the same
for w in 0 1; do
	t python3 - "$M/split/.log" "$w" <<'EOF' &
import os, sys
log, w = sys.argv[1], int(sys.argv[2])
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
for i in range(6):
    chunk = b"".join(b"w%d-%d-%d:" % (w, i, j) + bytes([65 + w]) * 699000 + b"\n" for j in range(3))
    chunk += b"w%d-%d-tail:" % (w, i)
    os.write(fd, chunk)
    os.write(fd, bytes([65 + w]) * 1000 + b"\n")
os.close(fd)
EOF
done
wrc=0
for j in $(jobs -p); do wait "$j" || wrc=$?; done
assert_eq 0 "$wrc" "both writers succeeded"
out=$(t python3 - "$M/split" <<'EOF'
import os, re, sys
d = sys.argv[1]
pat = re.compile(rb"^w([01])-(\d)-(\d|tail):([AB]+)\n$")
bad = 0
n = 0
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), "rb") as f:
        b = f.read()
    n += 1
    m = pat.match(b)
    if not m or set(m.group(4)) != {65 + int(m.group(1))}:
        bad += 1
print("records", n, "bad", bad)
EOF
)
assert_eq "records 48 bad 0" "$out" "every record one writer's whole line"

case_ "a file closed unwritten is a record when its close returns, in close order"
# SPEC §3: when a close returns, the record is in the log. A file created and
# closed without a byte written (the kernel sends the RELEASE after close(2)
# returned, and such a close may not be the file's end: bash's echo x > f
# closes a copy first) was appended at its release: its key was missing
# from .keys/ right after the close (1 or 2 in 1,000), and a file closed
# after it could take the lower offset. Generated (500): empty files, files with
# bytes and .log lines, mixed; each checked at once, then the order. The
# daemon delays each release by 20 ms (SBFS_TEST_RELEASE_DELAY_MS), as a
# loaded one may: on a quiet machine the release comes first anyway.
sb_umount
SBFS_TEST_RELEASE_DELAY_MS=20 sb_mount -o max_record_bytes=1024
M=$SB_MNT
mkdir "$M/eo" || sb_die "mkdir eo"
out=$(t python3 - "$M/eo" <<'EOF'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(7)
want, missing = [], 0
log = os.open(os.path.join(d, ".log"), os.O_WRONLY | os.O_APPEND)
for i in range(500):
    k = rnd.random()
    if k < 0.6:
        os.close(os.open(os.path.join(d, "e%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        want.append("e%d" % i)
        if k < 0.3:
            missing += not os.path.exists(os.path.join(d, ".keys", "e%d" % i))
        else: # an append at once: before, it took the lower offset 1 time in 20
            os.write(log, b"after %d\n" % i)
            want.append("-")
    elif k < 0.8:
        fd = os.open(os.path.join(d, "f%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"x" * rnd.randrange(1, 300))
        os.close(fd)
        want.append("f%d" % i)
    else:
        os.write(log, b"line %d\n" % i)
        want.append("-")
os.close(log)
got = []
for n in sorted(x for x in os.listdir(d) if x.isdigit()):
    try:
        got.append(os.getxattr(os.path.join(d, n), "user.streambus.key").decode())
    except OSError:
        got.append("-")
moved = sum(1 for a, b in zip(want, got) if a != b)
print("missing", missing, "records", len(got) == len(want), "out of order", moved)
EOF
)
assert_eq "missing 0 records True out of order 0" "$out" "every unwritten file a record at its close, in close order"
