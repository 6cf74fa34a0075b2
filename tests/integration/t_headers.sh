#!/usr/bin/env bash
# SPEC §2/§7, format v3: record headers through the mount and the tool.
# Generated records (binary values with NULs, empty values, many headers,
# none) are written with user.streambus.header.NAME set on the file before
# its close; the record shows them (getxattr, listxattr), `streambus dump`
# (text and --json) prints them, and cp -a, tar --xattrs and rsync -aX carry
# them through a backup and a restore, a second rsync -aX changing nothing.
# Limits give clean errors and append nothing; a record's headers cannot be
# changed once it is appended; damage in a header block (on disk, between
# mounts) is never served; a v2 log directory takes records with headers.
# Knobs: SB_SEED, SB_HEADERS_N (records, default 30).
. "$(dirname "$0")/lib.sh"
SEED=${SB_SEED:-$RANDOM}
N=${SB_HEADERS_N:-30}
sb_msg "t_headers: SB_SEED=$SEED SB_HEADERS_N=$N"
SB=$SB_BUILD/streambus
[ -x "$SB" ] || sb_die "no streambus at $SB"
sb_mount
M=$SB_MNT
T=$M/h
mkdir "$T" || sb_die "mkdir"

# hdrs DIR: one line per file: name, then its headers sorted, NAME=HEX
hdrs() {
	t python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
P = "user.streambus.header."
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    hs = sorted(x for x in os.listxattr(p) if x.startswith(P))
    print(n, " ".join("%s=%s" % (x[len(P):], os.getxattr(p, x).hex()) for x in hs))
EOF
}

# ---- generated records with headers -------------------------------------
python3 - "$SEED" "$N" "$T" "$SB_TMP/want" <<'EOF' || sb_die "writing the records"
import os, random, sys
seed, n, d, want = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = random.Random(seed)
P = "user.streambus.header."
lines = []
for i in range(n):
    k = r.choice(["none", "few", "few", "binary", "empty"])
    hs = {}
    if k == "few":
        for j in range(r.randrange(1, 4)):
            hs["h%d-%s" % (j, r.choice(["trace", "type", "x y", "a=b,c"]))] = r.randbytes(r.randrange(0, 40))
    elif k == "binary":
        # (small enough for a backup on ext4: one 4 KiB block of xattrs)
        hs["bin"] = bytes([0, 1, 0, 255, 10, 13, 0]) + r.randbytes(r.randrange(0, 1000))
        hs["utf8"] = "héllo\n".encode()
    elif k == "empty":
        hs["empty"] = b""
    name = os.path.join(d, "%020d" % i if i % 3 == 0 else "key-%d" % i)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"payload %d\n" % i)
    for h, v in hs.items():
        os.setxattr(fd, P + h, v)
    os.close(fd)
    lines.append("%020d %s" % (i, " ".join("%s=%s" % (h, v.hex()) for h, v in sorted(hs.items()))))
open(want, "w").write("\n".join(lines) + "\n")
EOF
assert_eq "$N" "$(sb_count "$T")" "records written"
full=$(hdrs "$T")
assert_eq "$(cat "$SB_TMP/want")" "$full" "every record shows the headers set on its file"
assert_true 'grep -q " empty= *$\| empty= " <<<"$full"' "an empty header value"
assert_eq ENODATA "$(pyerr 'os.getxattr(sys.argv[2], "user.streambus.header.nope")' "$T/$(rec 0)")" "a header a record does not have"

case_ "a record's headers are fixed once it is appended"
assert_eq ENOTSUP "$(pyerr 'os.setxattr(sys.argv[2], "user.streambus.header.late", b"x")' "$T/$(rec 0)")" "setxattr on a record"
assert_eq ENOTSUP "$(pyerr 'os.removexattr(sys.argv[2], "user.streambus.header.x")' "$T/$(rec 0)")" "removexattr on a record"

case_ "setting, replacing and removing on a file being created"
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT)
os.write(fd, b"x")
P = "user.streambus.header."
os.setxattr(fd, P + "a", b"1"); os.setxattr(fd, P + "a", b"22")
os.setxattr(fd, P + "gone", b"3"); os.removexattr(fd, P + "gone")
try:
    os.setxattr(fd, P + "a", b"4", os.XATTR_CREATE); raise SystemExit("XATTR_CREATE replaced")
except FileExistsError: pass
try:
    os.setxattr(fd, P + "b", b"4", os.XATTR_REPLACE); raise SystemExit("XATTR_REPLACE created")
except OSError as e:
    assert e.errno == errno.ENODATA
os.close(fd)' "$T/set")" "set, replace, remove, XATTR_CREATE, XATTR_REPLACE"
assert_eq "$(rec "$N") a=3232" "$(hdrs "$T" | tail -1 | sed 's/ *$//')" "the record has a=22 only"

case_ "many headers, large values (topic big: more than a backup on ext4 can hold)"
B=$M/big
mkdir "$B" || sb_die "mkdir big"
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2] + "/many", os.O_WRONLY | os.O_CREAT)
os.write(fd, b"many\n")
for j in range(1000):
    os.setxattr(fd, "user.streambus.header.m%04d" % j, b"%d" % j)
os.close(fd)' "$B")" "a record with 1000 headers"
assert_eq 1003 "$(pyerr 'print(len(os.listxattr(sys.argv[2])), end=" ")' "$B/$(rec 0)" | cut -d' ' -f1)" "listxattr: offset, timestamp, key and 1000 headers"
assert_eq 777 "$(t getfattr --absolute-names --only-values -n user.streambus.header.m0777 "$B/$(rec 0)")" "one of them"

case_ "limits: clean errors, the refused header not on the record"
lim() { # lim PY: setxattr(s) on a new file of topic big, then close; prints the errno
	pyerr 'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT)
P = "user.streambus.header."
try:
    '"$1"'
finally:
    os.close(fd)' "$B/lim"
}
assert_eq E2BIG "$(lim 'os.setxattr(fd, P + "v", b"x" * 65536)')" "a value of 65536 bytes"
assert_eq ERANGE "$(lim 'os.setxattr(fd, P + "n" * 234, b"x")')" "a name past the xattr name limit"
assert_eq E2BIG "$(lim '[os.setxattr(fd, P + "h%d" % i, b"x" * 30000) for i in range(3)]')" "headers over 64 KiB"
assert_eq E2BIG "$(lim '[os.setxattr(fd, P + "c%d" % i, b"") for i in range(1025)]')" "1025 headers"
# those files were closed unwritten: records with the headers set before the refusal
assert_eq "h0 h1" "$(pyerr 'print(" ".join(sorted(x[22:] for x in os.listxattr(sys.argv[2]) if x.startswith("user.streambus.header."))), end=" ")' "$B/$(rec 3)" | sed 's/ OK$//')" "the record keeps the headers set before the refused one"
assert_eq OK "$(lim 'os.setxattr(fd, P + "n" * 233, b"v" * 65000)')" "the largest name and a 65000-byte value"
# a header removed or replaced gives its room back (30,000 + 30,000 bytes,
# one removed, then 30,000 more; one replaced by a smaller value, then more)
assert_eq OK "$(lim '[os.setxattr(fd, P + "r%d" % i, b"x" * 30000) for i in range(2)]
    os.removexattr(fd, P + "r0"); os.setxattr(fd, P + "r2", b"x" * 30000)')" "a removed header's room taken again"
assert_eq OK "$(lim '[os.setxattr(fd, P + "s%d" % i, b"x" * 30000) for i in range(2)]
    os.setxattr(fd, P + "s0", b"x"); os.setxattr(fd, P + "s2", b"x" * 30000)')" "a replaced header's room taken again"

case_ "streambus dump shows them (text and --json)"
txt=$(t "$SB" dump "$SB_LOG" h 2>&1)
assert_true 'grep -q "^offset=$((N)) .* headers=a=\"22\" size=1 " <<<"$txt"' "text: headers=NAME=\"VALUE\""
assert_true 'grep -q "headers=bin=\"\\\\x00\\\\x01\\\\x00\\\\xff\\\\n\\\\r\\\\x00" <<<"$txt"' "text: binary values escaped"
assert_true 'grep -q "headers=empty=\"\" " <<<"$txt"' "text: an empty value"
t "$SB" dump --json "$SB_LOG" h >"$SB_TMP/d.json" 2>&1 || assert_fail_now "dump --json failed"
assert_eq "$(cat "$SB_TMP/want")" "$(python3 - "$SB_TMP/d.json" "$N" <<'EOF'
import base64, json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j["offset"] >= int(sys.argv[2]):
        continue
    hs = []
    for h in j["headers"]:
        name = h["name"] if "name" in h else base64.b64decode(h["name_base64"]).decode()
        v = h["value"].encode() if "value" in h else base64.b64decode(h["value_base64"])
        hs.append("%s=%s" % (name, v.hex()))
    print("%020d %s" % (j["offset"], " ".join(sorted(hs))))
EOF
)" "--json: the headers of every record"

case_ "backups carry them: rsync -aX, cp -a, tar --xattrs"
ts() { hdrs "$1" | sed -n "1,${N}p"; }
assert_ok rsync -aX "$T/" "$SB_TMP/b_rsync/"
mkdir "$SB_TMP/b_cp" && assert_ok cp -a "$T" "$SB_TMP/b_cp/"
assert_ok tar -C "$M" --xattrs -cf "$SB_TMP/b.tar" h
assert_eq "$(ts "$T")" "$(ts "$SB_TMP/b_rsync")" "the rsync -aX backup"
assert_eq "$(ts "$T")" "$(ts "$SB_TMP/b_cp/h")" "the cp -a backup"

restore() { # restore WHAT DIR: the records of topic DIR against the original
	assert_eq "$(ts "$T")" "$(ts "$M/$2")" "$1: every record's headers"
	assert_eq "$(t ls "$T" | head -n "$N")" "$(t ls "$M/$2" | head -n "$N")" "$1: offsets"
}
case_ "restore with rsync -aX (and a second run changes nothing)"
out=$(t rsync -aX "$SB_TMP/b_rsync/" "$M/r1/" 2>&1) || assert_fail_now "rsync -aX restore: $out"
restore "rsync -aX" r1
out=$(t rsync -aiX "$SB_TMP/b_rsync/" "$M/r1/" 2>&1); rc=$?
assert_eq 0 "$rc" "second rsync -aX exit status"
assert_eq "" "$out" "second rsync -aX: nothing to do"
case_ "restore with cp -a"
mkdir "$M/r2" && assert_ok cp -a "$SB_TMP/b_cp/h"/* "$M/r2/"
restore "cp -a" r2
case_ "restore with tar --xattrs"
assert_ok tar -C "$M" --xattrs --transform 's,^h,r3,' -xf "$SB_TMP/b.tar"
restore "tar --xattrs" r3
case_ "tar --xattrs carries 1000 headers and 65000-byte values"
assert_ok tar -C "$M" --xattrs -cf "$SB_TMP/big.tar" big
assert_ok tar -C "$M" --xattrs --transform 's,^big,big2,' -xf "$SB_TMP/big.tar"
assert_eq "$(hdrs "$B" | sha1sum)" "$(hdrs "$M/big2" | sha1sum)" "every header of topic big"

case_ "verify passes; headers survive a remount"
sb_umount
out=$(t "$SB" verify "$SB_LOG" 2>&1); rc=$?
assert_eq 0 "$rc" "verify ($out)"
sb_mount
assert_eq "$full" "$(hdrs "$T" | sed -n "1,${N}p")" "the headers after a remount"

case_ "damage in a header block is never served"
sb_umount
# flip one byte inside the header block of every record with headers that
# a generated plan picks, in the topic's segment files
python3 - "$SB_LOG/h" "$SEED" >"$SB_TMP/flipped" <<'EOF' || sb_die "damaging"
import os, random, struct, sys
d, r = sys.argv[1], random.Random(int(sys.argv[2]))
for f in sorted(os.listdir(d)):
    if not f.endswith(".seg"):
        continue
    p = os.path.join(d, f)
    b = bytearray(open(p, "rb").read())
    pos, cand = 32, []
    while pos + 32 <= len(b):
        crc, size, off, ts, flags, klen, vlen = struct.unpack_from("<IIQqHHI", b, pos)
        if size == 0:
            break
        hlen = size - 32 - klen - vlen
        # records before the last index entry: a mount opens the topic
        # (damage after it would make it refuse the whole topic)
        if hlen > 0 and off < 12:
            cand.append((pos + 32 + klen + vlen, hlen, off))
        pos += size
    # a random subset, never empty when there is a record with headers
    # (a plan that picked none left the case with nothing to check)
    pick = [c for c in cand if r.random() < 0.7]
    if cand and not pick:
        pick = [r.choice(cand)]
    for at, hlen, off in pick:
        b[at + r.randrange(hlen)] ^= 1 << r.randrange(8)
        print(off)
    open(p, "wb").write(b)
EOF
assert_true '[ -s "$SB_TMP/flipped" ]' "some header blocks damaged"
out=$(t "$SB" verify "$SB_LOG" 2>&1); rc=$?
assert_eq 1 "$rc" "verify finds the damage"
sb_mount
bad=0 eio=0
while read -r off; do
	p=$T/$(rec "$off")
	for op in 'os.listxattr(sys.argv[2])' 'open(sys.argv[2], "rb").read()' \
		  'os.getxattr(sys.argv[2], os.listxattr(sys.argv[2])[-1])'; do
		r=$(pyerr "$op" "$p")
		case $r in
		EIO) eio=$((eio + 1)) ;;
		*) bad=$((bad + 1)); sb_msg "damaged record $off: $op gave $r" ;;
		esac
	done
done <"$SB_TMP/flipped"
assert_true '[ "$eio" -gt 0 ]' "reads of the damaged records were tried ($eio)"
assert_eq 0 "$bad" "every read of a damaged record fails with EIO"
sb_umount

case_ "a version 2 log directory takes records with headers in a new v3 segment"
rm -rf "$SB_LOG" && mkdir -p "$SB_TMP/v2" && tar -C "$SB_TMP/v2" -xzf "$SB_TOP/tests/fixtures/v2/logdir.tar.gz" || sb_die "fixture"
mv "$SB_TMP/v2/log" "$SB_LOG"
nseg=$(ls "$SB_LOG/lines"/*.seg | wc -l)
sb_mount
next=$(t ls "$M/lines" | tail -1)
assert_eq OK "$(pyerr 'fd = os.open(sys.argv[2] + "/with-headers", os.O_WRONLY | os.O_CREAT)
os.write(fd, b"v3\n"); os.setxattr(fd, "user.streambus.header.trace", b"\0t"); os.close(fd)' "$M/lines")" "a record with headers in a v2 topic"
last=$(t ls "$M/lines" | tail -1)
assert_eq 0074 "$(t getfattr --absolute-names --only-values -n user.streambus.header.trace "$M/lines/$last" | od -An -tx1 | tr -d ' \n')" "its header"
sb_umount
assert_eq $((nseg + 1)) "$(ls "$SB_LOG/lines"/*.seg | wc -l)" "one new segment"
assert_eq 3 "$(python3 -c 'import struct,sys; print(struct.unpack_from("<H", open(sys.argv[1], "rb").read(6), 4)[0])' "$(ls "$SB_LOG/lines"/*.seg | tail -1)")" "the new segment is version 3"
assert_eq 2 "$(python3 -c 'import struct,sys; print(struct.unpack_from("<H", open(sys.argv[1], "rb").read(6), 4)[0])' "$(ls "$SB_LOG/lines"/*.seg | head -1)")" "the old one stays version 2"
out=$(t "$SB" verify "$SB_LOG" 2>&1); rc=$?
assert_eq 0 "$rc" "verify of the upgraded directory ($out)"
assert_ne "$next" "$last" "appended after the v2 records"
