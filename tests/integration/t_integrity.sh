#!/usr/bin/env bash
# SPEC §4: a reader never sees a damaged byte. A byte flipped in a segment
# file (after a clean unmount, where the mount-time check does not look, or
# under the running daemon) makes every read that reaches that record fail
# with EIO, through .log (cat, sed, dd at any position) and through the
# record file (at any position, 128 KiB in too); the good bytes before it
# are still served; a damaged record is EIO, never "No such file"; and the
# daemon's log names the topic, the offset and the segment file.
. "$(dirname "$0")/lib.sh"
M=$SB_MNT
EIO=$(sb_strerror EIO)

# recinfo TOPIC OFFSET: "FILE POS KLEN VLEN" of a record, from the segment
# files as store/format.h describes them.
recinfo() {
	python3 - "$SB_LOG/$1" "$2" <<'EOF'
import os, struct, sys
d, want = sys.argv[1], int(sys.argv[2])
for name in sorted(n for n in os.listdir(d) if n.endswith(".seg")):
    b = open(os.path.join(d, name), "rb").read()
    p = 32
    while p + 32 <= len(b):
        size, off = struct.unpack_from("<IQ", b, p + 4)
        klen, vlen = struct.unpack_from("<HI", b, p + 26)
        if size == 0:
            break
        if off == want:
            print(name, p, klen, vlen)
            sys.exit(0)
        p += size
sys.exit("record %d not found" % want)
EOF
}

# flip TOPIC FILE POS: XOR one byte of a segment file with 0x20, in place
# (the daemon's mapping sees it at once).
flip() {
	python3 - "$SB_LOG/$1/$2" "$3" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
p = int(sys.argv[2])
b = os.pread(fd, 1, p)
os.pwrite(fd, bytes([b[0] ^ 0x20]), p)
os.close(fd)
EOF
}

daemon_out() { cat "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"; }

# assert_logged TOPIC OFFSET FILE: the daemon's output names all three.
assert_logged() {
	local out want="$1: damaged record at offset $2 in $3"
	out=$(daemon_out)
	if grep -qF "$want" <<<"$out"; then pass_; return 0; fi
	assert_fail_now "the daemon's log should name topic $1, offset $2 and file $3 ([$want]); it says: $(printf '%s' "$out" | tail -3)"
}

# 300 lines of about 130 bytes: several index entries, so that the damage
# below sits before the last one (the mount after a clean close checks only
# from there on).
python3 - "$SB_TMP/lines" <<'EOF'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(300):
        f.write(b"line %04d %s\n" % (i + 1, b"abcdefghij" * 12))
EOF

case_ "a flipped payload byte after a clean unmount: .log reads fail with EIO at it"
sb_mount_fg
mkdir "$M/orders" || sb_die "mkdir"
assert_sh_ok 'cat "$1" >>"$2"' "$SB_TMP/lines" "$M/orders/.log"
sb_umount
read -r f pos klen vlen < <(recinfo orders 49) || sb_die "recinfo"
flip orders "$f" $((pos + 32 + klen + 20))
sb_mount_fg
out=$(t sed -n 50p "$M/orders/.log" 2>"$SB_TMP/err"); rc=$?
assert_ne 0 "$rc" "sed -n 50p of a .log whose line 50 is damaged: exit status"
assert_eq "" "$out" "sed -n 50p prints nothing of the damaged line"
assert_true 'grep -q "$EIO" "$SB_TMP/err"' "sed says $EIO ($(cat "$SB_TMP/err"))"
t cat "$M/orders/.log" >"$SB_TMP/cat.out" 2>"$SB_TMP/err"; rc=$?
assert_ne 0 "$rc" "cat .log exit status"
assert_true 'grep -q "$EIO" "$SB_TMP/err"' "cat .log says $EIO ($(cat "$SB_TMP/err"))"
assert_true 'head -n 49 "$SB_TMP/lines" | cmp -s - "$SB_TMP/cat.out"' \
	"cat .log gives exactly the 49 good lines before the damage ($(wc -c <"$SB_TMP/cat.out") bytes)"
assert_fail_with EIO cat "$M/orders/$(rec 49)"
# past the damage: a read that starts after it is served
skip=$(head -n 50 "$SB_TMP/lines" | wc -c)
assert_eq "$(sed -n 51p "$SB_TMP/lines")" "$(t dd if="$M/orders/.log" bs=1 skip="$skip" count=$(sed -n 51p "$SB_TMP/lines" | wc -c) status=none | head -n 1)" \
	"dd of .log past the damaged record reads the next line"
# a read that starts inside the damaged record fails
assert_fail_with EIO dd if="$M/orders/.log" of=/dev/null bs=10 skip=$(((skip - 40) / 10)) count=1 status=none
assert_eq "$(sed -n 48p "$SB_TMP/lines")" "$(t cat "$M/orders/$(rec 47)")" "the record before it reads as ever"
assert_logged orders 49 "$f"
sb_umount

case_ "a large record read 128 KiB and more into it fails with EIO when bytes before are damaged"
sb_mount_fg
mkdir "$M/big" || sb_die "mkdir"
python3 -c 'import sys; sys.stdout.write("a" * 50 + "\n"); sys.stdout.write("".join(chr(97 + i % 26) for i in range(700000)) + "\n"); sys.stdout.write("b" * 50 + "\n")' >"$SB_TMP/big"
assert_sh_ok 'cat "$1" >>"$2"' "$SB_TMP/big" "$M/big/.log"
read -r f pos klen vlen < <(recinfo big 1) || sb_die "recinfo"
assert_eq 700001 "$vlen" "the large record's payload length"
# open it first (the lookup checks the record whole), then damage a byte
# 100 KiB in, under the running daemon, and read 256 KiB in
assert_eq EIO "$(pyerr '
fd = os.open(sys.argv[2], os.O_RDONLY)
with open(sys.argv[3], "r+b") as seg:
    seg.seek(int(sys.argv[4]))
    b = seg.read(1)
    seg.seek(int(sys.argv[4]))
    seg.write(bytes([b[0] ^ 0x20]))
data = os.pread(fd, 4096, 256 * 1024)
print("read %d bytes" % len(data))
' "$M/big/$(rec 1)" "$SB_LOG/big/$f" $((pos + 32 + klen + 100 * 1024)))" \
	"pread at 256 KiB of an open record file whose byte at 100 KiB was flipped"
assert_fail_with EIO dd if="$M/big/$(rec 1)" of=/dev/null bs=4096 skip=64 count=4 status=none
assert_fail_with EIO dd if="$M/big/.log" of=/dev/null bs=4096 skip=64 count=4 status=none
assert_eq "$(head -n 1 "$SB_TMP/big")" "$(t cat "$M/big/$(rec 0)")" "the record before it reads as ever"
assert_eq "$(tail -n 1 "$SB_TMP/big")" "$(t cat "$M/big/$(rec 2)")" "the record after it reads as ever"
assert_logged big 1 "$f"
sb_umount

case_ "a large record is checked whole once per open file, then each read checks only what it serves"
# SPEC §4: reading a record of N bytes costs O(N), not a check of all N
# bytes at each of the kernel's 128 KiB requests (a 256 MiB cat took 76 s).
# Shown by what a read reaches: after an open file's first read, a byte
# flipped near the record's end fails the reads that reach it (and a new
# open's first read), not a read 4 MiB before it, which gets the bytes
# written. The same through .log.
sb_mount_fg -o max_record_bytes=16M
mkdir "$M/huge" || sb_die "mkdir"
head -c $((8 << 20)) /dev/urandom >"$SB_TMP/huge"
cp "$SB_TMP/huge" "$M/huge/f" || sb_die "cp"
read -r f pos klen vlen < <(recinfo huge 0) || sb_die "recinfo"
assert_eq $((8 << 20)) "$vlen" "the 8 MiB record's payload length"
for file in "$(rec 0)" .log; do
	at=$((pos + 32 + klen + (8 << 20) - 1000))
	assert_eq "OK EIO EIO OK" "$(pyerr '
def fresh(fd):  # nothing of it in the page cache: every read reaches the daemon
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return fd
fd = fresh(os.open(sys.argv[2], os.O_RDONLY))
src = open(sys.argv[5], "rb").read()
ok = os.pread(fd, 131072, 0) == src[:131072]
fl = os.open(sys.argv[3], os.O_RDWR)
b = os.pread(fl, 1, int(sys.argv[4]))
os.pwrite(fl, bytes([b[0] ^ 0x20]), int(sys.argv[4]))
os.close(fl)
r = []
r.append("OK" if ok and os.pread(fd, 131072, 4 << 20) == src[4 << 20:(4 << 20) + 131072] else "DIFF")
for f2, o in ((fd, (8 << 20) - 4096), (None, 8 << 19)):
    try:
        os.pread(fresh(f2 or os.open(sys.argv[2], os.O_RDONLY)), 4096, o)
        r.append("served")
    except OSError as e:
        r.append(errno.errorcode[e.errno])
print(" ".join(r), end=" ")
' "$M/huge/$file" "$SB_LOG/huge/$f" "$at" "$SB_TMP/huge")" \
		"$file: the read 4 MiB in after a flip 1000 bytes before the end; the read of its last 4 KiB; a new open (or its first read)"
	flip huge "$f" "$at" # undone
done
sb_umount

case_ "a garbled record header: EIO for .log and for the record, never ENOENT or an empty .log"
sb_mount_fg
mkdir "$M/hdr" || sb_die "mkdir"
assert_sh_ok 'cat "$1" >>"$2"' "$SB_TMP/lines" "$M/hdr/.log"
sb_umount
# the first record's size field (the stream starts at it), and record 120's
# value length, both after a clean unmount
read -r f0 pos0 _ _ < <(recinfo hdr 0) || sb_die "recinfo"
read -r f1 pos1 _ _ < <(recinfo hdr 120) || sb_die "recinfo"
read -r f2 pos2 _ _ < <(recinfo hdr 200) || sb_die "recinfo"
flip hdr "$f0" $((pos0 + 5))
flip hdr "$f1" $((pos1 + 29))
sb_mount_fg
assert_ne 0 "$(t stat -c %s "$M/hdr/.log")" "size of .log with a garbled first header"
assert_fail_with EIO cat "$M/hdr/.log"
assert_fail_with EIO cat "$M/hdr/$(rec 0)"
assert_fail_with EIO cat "$M/hdr/$(rec 120)"
assert_fail_with EIO stat "$M/hdr/$(rec 120)"
assert_logged hdr 0 "$f0"
# a header garbled under the running daemon, in a part never read before
flip hdr "$f2" $((pos2 + 12))
skip=$(head -n 200 "$SB_TMP/lines" | wc -c)
t dd if="$M/hdr/.log" of="$SB_TMP/dd.out" bs=4096 iflag=skip_bytes skip=$((skip - 1000)) status=none 2>"$SB_TMP/err"; rc=$?
assert_ne 0 "$rc" "dd of .log across a header garbled while mounted: exit status"
assert_true 'grep -q "$EIO" "$SB_TMP/err"' "dd says $EIO ($(cat "$SB_TMP/err"))"
assert_true 'head -c "$skip" "$SB_TMP/lines" | tail -c 1000 | cmp -s - "$SB_TMP/dd.out"' \
	"dd gives the 1000 good bytes before the damaged record, nothing of it"
assert_fail_with EIO cat "$M/hdr/$(rec 200)"
assert_logged hdr 200 "$f2"
assert_eq "$(sed -n 151p "$SB_TMP/lines")" "$(t cat "$M/hdr/$(rec 150)")" "an undamaged record reads as ever"
sb_umount
