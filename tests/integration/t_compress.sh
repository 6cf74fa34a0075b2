#!/usr/bin/env bash
# SPEC §1 `compression`, §6: sealed segments kept compressed in blocks, in the
# background, unseen by readers: cat of .log and of records, dd at any
# position and tail -f while segments are swapped, with zstd and lz4; after
# an unmount, `streambus stat` shows stored bytes below logical ones and
# `streambus verify` passes; a remount reads the same; a damaged block is
# found by verify, never served (EIO), cut by `recover --cut`. Records with
# headers: their segments compress too, and the xattrs, `streambus dump`
# (text and --json) read back what was written.
. "$(dirname "$0")/lib.sh"
SB=$SB_BUILD/streambus
M=$SB_MNT

# 40,000 lines of log-like text (compressible), deterministic.
python3 - "$SB_TMP/expected" <<'EOF'
import random, sys
rnd = random.Random(11)
words = b"error warning info debug request served user session cache miss hit disk net".split()
with open(sys.argv[1], "wb") as f:
    for i in range(40000):
        f.write(b"2026-11-30T01:%02d:%02d host%d %s %s id=%d\n" % (i // 3600 % 60, i // 60 % 60, i % 7,
                rnd.choice(words), b" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 12))), i))
EOF
E=$SB_TMP/expected

compressed_segs() { # how many segment files of topic $1 are compressed
	local n=0 f
	for f in "$SB_LOG/$1"/*.seg; do
		[ "$(head -c 4 "$f" 2>/dev/null)" = SBZS ] && n=$((n + 1))
	done
	echo $n
}

for codec in zstd lz4; do
	case_ "$codec: appends through .log, sealed segments compressed in the background, reads the same"
	sb_mount -o compression=$codec,segment_bytes=65536,sync=interval,sync_interval_ms=50
	mkdir "$M/$codec" || sb_die "mkdir"
	L=$M/$codec/.log
	out=$SB_TMP/tail.$codec
	timeout 300 tail -c +1 -f "$L" >"$out" 2>"$out.err" &
	tpid=$!
	# in pieces, so that segments are sealed and swapped while it reads
	split -l 5000 "$E" "$SB_TMP/piece.$codec."
	for p in "$SB_TMP"/piece.$codec.*; do
		assert_sh_ok 'cat "$1" >> "$2"' "$p" "$L"
		t cmp -s <(head -c "$(stat -c %s "$L")" "$E") "$L" || assert_fail_now "$codec: .log differs while segments are swapped"
	done
	nseg=$(ls "$SB_LOG/$codec"/*.seg | wc -l)
	[ "$nseg" -ge 4 ] || assert_fail_now "$codec: expected several segments, got $nseg"
	sb_wait_until '[ "$(compressed_segs '"$codec"')" -ge $((nseg - 1)) ]' $((20 * SB_SLOW)) ||
		assert_fail_now "$codec: sealed segments not compressed in the background ($(compressed_segs $codec) of $nseg)"
	pass_
	assert_true 't cmp "$E" "$L"' "$codec: cat .log equals what was appended"
	sb_wait_until '[ "$(stat -c %s "$out")" -ge "$(stat -c %s "$E")" ]' $((10 * SB_SLOW)) ||
		assert_fail_now "$codec: tail -f did not see every append"
	assert_true 'cmp -s "$E" "$out"' "$codec: tail -f saw every line, in order, across the swaps"
	kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null
	out=$(t python3 - "$E" "$M/$codec" <<'EOF'
import os, random, sys
lines = open(sys.argv[1], "rb").read().splitlines(keepends=True)
rnd = random.Random(3)
idx = list(range(0, len(lines), 97)) + [rnd.randrange(len(lines)) for _ in range(500)]
bad = [i for i in idx if open(os.path.join(sys.argv[2], "%020d" % i), "rb").read() != lines[i]]
d = b"".join(lines)
fd = os.open(os.path.join(sys.argv[2], ".log"), os.O_RDONLY)
for _ in range(300):
    p = rnd.randrange(0, len(d)); n = rnd.randrange(1, 200000)
    if os.pread(fd, n, p) != d[p:p + n]:
        bad.append(("pread", p, n))
print("mismatches", len(bad), bad[:5])
EOF
)
	assert_eq "mismatches 0 []" "$out" "$codec: record files and random preads of .log equal the lines"
	sb_umount
	st=$("$SB" stat --json "$SB_LOG" "$codec")
	read -r bytes logical nz <<<"$(printf '%s' "$st" | python3 -c 'import json,sys; t=json.load(sys.stdin)["topics"][0]; print(t["bytes"], t["logical_bytes"], t["compressed_segments"])')"
	assert_true '[ "$nz" -ge 3 ] && [ $((bytes * 2)) -lt "$logical" ]' "$codec: stat: $nz compressed segments, $bytes bytes stored of $logical logical"
	assert_ok "$SB" verify "$SB_LOG" "$codec"
	sb_mount
	assert_true 't cmp "$E" "$M/'"$codec"'/.log"' "$codec: after a remount, .log the same"
	assert_eq "$(sed -n 12346p "$E")" "$(t cat "$M/$codec/$(rec 12345)")" "$codec: record 12345 after a remount"
	sb_umount
done

case_ "records with headers: their segments compress too, and every header reads back the same"
sb_mount -o compression=zstd,segment_bytes=65536,sync=interval,sync_interval_ms=50
mkdir "$M/hdr" || sb_die "mkdir"
# 400 records of ~600 bytes: binary values (NULs), empty values, many
# headers, none; the expected headers (NAME=HEX, sorted) in want.hdr
python3 - "$M/hdr" "$SB_TMP/want.hdr" <<'EOF' || sb_die "writing records with headers"
import os, random, sys
d, want = sys.argv[1], sys.argv[2]
r = random.Random(9)
P = "user.streambus.header."
lines = []
for i in range(400):
    k = i % 5
    hs = {}
    if k == 1:
        hs["bin"] = bytes([0, 1, 0, 255, 10, 13, 0]) + r.randbytes(r.randrange(0, 200))
    elif k == 2:
        hs["empty"] = b""
        hs["trace"] = b"t-%d" % i
    elif k == 3:
        for j in range(r.randrange(10, 60)):
            hs["m%03d" % j] = r.randbytes(r.randrange(0, 12))
    fd = os.open(os.path.join(d, "r%d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, (b"record %d: the quick brown fox jumps over the lazy dog\n" % i) * 10)
    for h, v in hs.items():
        os.setxattr(fd, P + h, v)
    os.close(fd)
    lines.append("%020d %s" % (i, " ".join("%s=%s" % (h, v.hex()) for h, v in sorted(hs.items()))))
open(want, "w").write("\n".join(lines) + "\n")
EOF
# mhdrs DIR: the headers as the mount shows them, one line per record
mhdrs() {
	t python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
P = "user.streambus.header."
for n in sorted(x for x in os.listdir(d) if x.isdigit()):
    p = os.path.join(d, n)
    hs = sorted(x for x in os.listxattr(p) if x.startswith(P))
    print(n, " ".join("%s=%s" % (x[len(P):], os.getxattr(p, x).hex()) for x in hs))
EOF
}
nseg=$(ls "$SB_LOG/hdr"/*.seg | wc -l)
[ "$nseg" -ge 3 ] || assert_fail_now "headers: expected several segments, got $nseg"
sb_wait_until '[ "$(compressed_segs hdr)" -ge $((nseg - 1)) ]' $((20 * SB_SLOW)) ||
	assert_fail_now "headers: sealed segments with headers not compressed ($(compressed_segs hdr) of $nseg)"
pass_
assert_eq "$(cat "$SB_TMP/want.hdr")" "$(mhdrs "$M/hdr")" "headers: every record's xattrs, from compressed blocks"
sb_umount
assert_ok "$SB" verify "$SB_LOG" hdr
txt=$(t "$SB" dump "$SB_LOG" hdr 2>&1)
assert_true 'grep -q "^offset=1 .*headers=bin=\"\\\\x00\\\\x01\\\\x00\\\\xff\\\\n\\\\r\\\\x00" <<<"$txt"' "dump text: a binary header from a compressed block"
assert_true 'grep -q "^offset=2 .*headers=empty=\"\",trace=\"t-2\" " <<<"$txt"' "dump text: an empty header value"
t "$SB" dump --json "$SB_LOG" hdr >"$SB_TMP/hdr.json" 2>&1 || assert_fail_now "dump --json failed"
assert_eq "$(cat "$SB_TMP/want.hdr")" "$(python3 - "$SB_TMP/hdr.json" <<'EOF'
import base64, json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    hs = []
    for h in j.get("headers", []):
        name = h["name"] if "name" in h else base64.b64decode(h["name_base64"]).decode()
        v = h["value"].encode() if "value" in h else base64.b64decode(h["value_base64"])
        hs.append("%s=%s" % (name, v.hex()))
    print("%020d %s" % (j["offset"], " ".join(sorted(hs))))
EOF
)" "dump --json: the headers of every record"
sb_mount
assert_eq "$(cat "$SB_TMP/want.hdr")" "$(mhdrs "$M/hdr")" "headers: the same after a remount"
sb_umount

case_ "a damaged compressed block: verify finds it, reads fail there, recover --cut drops its records alone"
f=$(for f in "$SB_LOG"/zstd/*.seg; do [ "$(head -c 4 "$f")" = SBZS ] && echo "$f"; done | sed -n 3p)
python3 - "$f" <<'EOF'
import sys
p = sys.argv[1]
import struct
d = bytearray(open(p, "rb").read())
table = struct.unpack_from("<Q", d, 64)[0]
first = struct.unpack_from("<I", d, table + 8)[0]  # the first block's position
d[first + 100] ^= 0x10
open(p, "wb").write(d)
EOF
out=$("$SB" verify "$SB_LOG" zstd 2>&1); rc=$?
assert_eq 1 "$rc" "verify exits 1 on a damaged block"
assert_true 'printf "%s" "$out" | grep -q "damaged compressed block"' "verify names the damaged block: $(printf '%s' "$out" | head -3)"
sb_mount
assert_true '! t cat "$M/zstd/.log" >/dev/null 2>&1' "cat .log fails at the damaged block (never serves it)"
assert_true '! t cat "$M/zstd/.log" 2>/dev/null | cmp -s - "$E"' "what cat .log gives is not the whole"
assert_true 't cat "$M/zstd/.log" 2>/dev/null | cmp -s - <(head -c "$(t cat "$M/zstd/.log" 2>/dev/null | wc -c)" "$E")' "what it gives before the damage is right"
assert_true 't cmp "$E" "$M/lz4/.log"' "the other topic reads"
sb_umount
assert_ok "$SB" recover --cut "$SB_LOG" zstd
assert_ok "$SB" verify "$SB_LOG" zstd
sb_mount
n=$(sb_count "$M/zstd")
assert_true '[ "$n" -gt 0 ] && [ "$n" -lt 40000 ]' "recover --cut dropped records ($n of 40000 kept)"
# the block's segment has others after it: its records alone go (a gap),
# the later ones stay, and .log is the kept records back to back
out=$(t python3 - "$E" "$M/zstd" <<'EOF'
import os, sys
lines = open(sys.argv[1], "rb").read().splitlines(keepends=True)
d = sys.argv[2]
kept = sorted(int(n) for n in os.listdir(d) if n.isdigit())
have = set(kept)
gone = [i for i in range(len(lines)) if i not in have]
run = bool(gone) and gone == list(range(gone[0], gone[-1] + 1))
log = open(os.path.join(d, ".log"), "rb").read()
print("one run" if run else "not one run: %s" % gone[:5],
      "log ok" if log == b"".join(lines[i] for i in kept) else "log differs",
      "later kept" if kept and kept[-1] == len(lines) - 1 else "cut at the end")
EOF
)
assert_eq "one run log ok later kept" "$out" "the damaged block's records dropped, the rest kept, .log theirs"
assert_sh_ok 'echo appended-after-cut >> "$1"' "$M/zstd/.log"
assert_eq "appended-after-cut" "$(t tail -n 1 "$M/zstd/.log")" "appends after the cut"
sb_umount

case_ "a damaged block table: named as such by verify and by the open, not as a bad header at byte 0"
cp -a "$SB_LOG" "$SB_TMP/zt"
f=$(for f in "$SB_TMP/zt"/lz4/*.seg; do [ "$(head -c 4 "$f")" = SBZS ] && echo "$f"; done | sed -n 2p)
python3 - "$f" <<'EOF'
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
table = struct.unpack_from("<Q", d, 64)[0]
d[table + 9] ^= 0x04  # inside the block table, under its CRC
open(p, "wb").write(d)
EOF
out=$("$SB" verify "$SB_TMP/zt" lz4 2>&1); rc=$?
assert_eq 1 "$rc" "verify exits 1 on a damaged block table"
assert_true 'printf "%s" "$out" | grep -q "$(basename "$f"): compressed segment: its block table or dictionary fails its check"' "verify names the block table: $(printf '%s' "$out" | head -2)"
out=$("$SB" stat "$SB_TMP/zt" lz4 2>&1)
assert_true 'printf "%s" "$out" | grep -q "block table or dictionary fails its check, which cannot be a torn write (a compressed segment is synced before it takes its name)"' "the open names it and why it is no torn write: $(printf '%s' "$out" | grep warning | head -2)"
# recover --cut: its blocks cannot be told good without the table, so its
# offsets become a gap; every later segment stays (it cut the log there)
t "$SB" dump --json "$SB_LOG" lz4 >"$SB_TMP/zt.before.json" 2>&1 || assert_fail_now "dump --json failed"
out=$("$SB" recover --cut "$SB_TMP/zt" lz4 2>&1); rc=$?
assert_eq 0 "$rc" "recover --cut of a damaged block table exits 0: $out"
assert_true 'printf "%s" "$out" | grep -q "$(basename "$f"): compressed segment whose header, block table or dictionary fails its check at byte 0: offsets .* dropped"' "recover names the dropped offsets: $out"
assert_ok "$SB" verify "$SB_TMP/zt" lz4
t "$SB" dump --json "$SB_TMP/zt" lz4 >"$SB_TMP/zt.after.json" 2>&1 || assert_fail_now "dump --json after recover failed"
base=$(basename "$f" .seg); base=$((10#$base))
next=$(ls "$SB_TMP/zt/lz4" | grep '\.seg$' | sort | awk -v f="$(basename "$f")" 'p { print; exit } $0 == f { p = 1 }')
next=$((10#${next%.seg}))
assert_eq "ok" "$(python3 - "$SB_TMP/zt.before.json" "$SB_TMP/zt.after.json" $base $next <<'PY'
import json, sys
before = [json.loads(l) for l in open(sys.argv[1])]
after = {j["offset"]: j for j in map(json.loads, open(sys.argv[2]))}
lo, hi = int(sys.argv[3]), int(sys.argv[4])
bad = [j["offset"] for j in before if (j["offset"] in after) == (lo <= j["offset"] < hi)
       or (j["offset"] in after and after[j["offset"]] != j)]
print("ok" if not bad and len(after) == len(before) - (hi - lo) else "bad %s (%d of %d kept)" % (bad[:5], len(after), len(before)))
PY
)" "after recover: every record as before but the damaged segment's [$base, $next)"
rm -rf "$SB_TMP/zt"

case_ "compressed segments written before blocks held headers (fixture) verify, dump and read"
FX=$SB_TOP/tests/fixtures/zseg-pre-headers
SB_LOG=$SB_TMP/fx
mkdir -p "$SB_LOG" && tar -C "$SB_LOG" -xzf "$FX/logdir.tar.gz" || sb_die "cannot unpack the fixture"
python3 - "$SB_TMP/fx.want" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(3000):
        f.write(b"zseg fixture line %d: %s %d\n" % (i, b"info served" if i % 3 else b"warn miss", i * 7919 % 1000))
PY
for topic in lz4 zstd; do
	assert_eq 13 "$(compressed_segs $topic)" "fixture $topic: its sealed segments are compressed"
	assert_ok "$SB" verify "$SB_LOG" $topic
	t "$SB" dump --json "$SB_LOG" $topic >"$SB_TMP/fx.$topic.json" 2>&1 || assert_fail_now "dump --json of the fixture failed"
	assert_eq "ok" "$(python3 - "$SB_TMP/fx.$topic.json" "$SB_TMP/fx.want" <<'PY'
import json, sys
want = open(sys.argv[2], "rb").read().splitlines(keepends=True)
got = [json.loads(l) for l in open(sys.argv[1])]
bad = [j["offset"] for i, j in enumerate(got) if j["offset"] != i or j["value"].encode() != want[i]
       or j["timestamp_ns"] != 10**18 + i * 1000 or j.get("key") != ("k%d" % (i % 7) if i % 4 == 0 else None)
       or j["headers"] != []]
print("ok" if len(got) == len(want) and not bad else "%d records, bad %s" % (len(got), bad[:5]))
PY
)" "fixture $topic: dump --json gives every record as written"
done
sb_mount
for topic in lz4 zstd; do
	assert_true 't cmp "$SB_TMP/fx.want" "$M/'$topic'/.log"' "fixture $topic: .log through the mount"
done
sb_umount
