#!/usr/bin/env bash
# streambus recover: "nothing to recover" on a clean log; prints each change
# (torn tail cut, index rebuilt) naming topic and segment; verify passes
# afterwards and the records before the damage are intact; refuses (exit 2)
# while LOG_DIR/.lock is held (after waiting 10 s for a holder
# that is not a mount; t_remount.sh has the mounted daemon),
# changing nothing; never creates a missing LOG_DIR; refuses a directory
# that holds no log (the parent of LOG_DIR, a foreign one), writing
# nothing; follows a link to a topic to its LOG_DIR; recover --cut of a
# damaged block in a sealed compressed segment drops that block alone.
. "$(dirname "$0")/lib_tool.sh"
gen_build
C=$T/clean
gen -s 4096 -i 256 -k key- "$C" orders 300
gen "$C" other 3
fresh() { rm -rf "$T/log"; cp -a "$C" "$T/log"; L=$T/log; O=$L/orders; }
snap() { (cd "$1" && find . -printf '%p %s\n' | sort && cat */* | md5sum); }

fresh
run_rc rc "$SB" recover "$L"
eq "$rc" 0 "clean exit"; eq "$out" "nothing to recover" "clean output"
run_rc rc "$SB" recover "$L" orders
eq "$rc" 0 "clean topic exit"; eq "$out" "nothing to recover" "clean topic output"

# torn tail + missing index of the first segment
fresh
last=$(ls "$O"/*.seg | tail -1); lname=$(basename "$last")
first=$(ls "$O"/*.seg | head -1); fname=$(basename "$first")
size=$(stat -c %s "$last")
rm "$O/clean" # a crash: a torn tail (after a clean close it is damage: below)
truncate -s $((size - 5)) "$last"
rm "${first%.seg}.idx"
"$SB" dump "$L/orders" >"$T/before.txt"
run_rc rc "$SB" recover "$L"
eq "$rc" 0 "recover exit ($out)"
has "$out" "^orders: $lname: torn record at byte $((size - 47)); cut 42 bytes \\(log ends at offset 299\\)$" "cut reported"
has "$out" "^orders: $fname: missing index rebuilt" "rebuild reported"
hasnt "$out" "nothing to recover" "changes reported"
hasnt "$out" "^other:" "other topic untouched"
eq "$(stat -c %s "$last")" $((size - 47)) "cut back to the last whole record"
[ -f "${first%.seg}.idx" ] || fail "index not rebuilt"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "verify after recover ($out)"
"$SB" dump "$L/orders" >"$T/after.txt"
eq "$(wc -l <"$T/after.txt")" 299 "records after recover"
cmp -s "$T/before.txt" "$T/after.txt" || fail "records changed by recover"
run_rc rc "$SB" recover "$L"
eq "$out" "nothing to recover" "second recover"

# refused while the lock is held (what a mounted streambusfs holds)
fresh
rm "$O/clean"
truncate -s -5 "$(ls "$O"/*.seg | tail -1)"
before=$(snap "$L")
exec 9>>"$L/.lock"
flock -n 9 || fail "cannot take the lock"
run_rc rc timeout 20 "$SB" recover "$L"
exec 9>&-
eq "$rc" 2 "locked exit"
# not a mount: waited for (10 s, saying so), then refused naming the taker
has "$out" "^streambus recover: waiting \(up to 10 s\) for process [0-9]+ to release $L \.\.\.$" "waiting message"
has "$out" "^streambus recover: $L: still in use by process [0-9]+ after 10 s \(it holds $L/\.lock\)$" "locked message"
eq "$(snap "$L")" "$before" "recover changed files while locked"
run_rc rc "$SB" recover "$L"
eq "$rc" 0 "recover once the lock is free ($out)"
has "$out" "torn record" "recovered once free"

# the newest segment cut short after a clean close: damage, not a torn
# write (SPEC §6): refused, nothing cut, until recover --cut
fresh
truncate -s -5 "$(ls "$O"/*.seg | tail -1)"
before=$(cd "$O" && ls -l --time-style=+ && cat * | md5sum)
run_rc rc "$SB" recover "$L"
eq "$rc" 1 "refused exit ($out)"
has "$out" "after the clean close .*records lost" "refusal says why"
eq "$(cd "$O" && ls -l --time-style=+ && cat * | md5sum)" "$before" "recover cut without --cut"
run_rc rc "$SB" recover --cut "$L"
eq "$rc" 0 "recover --cut exit ($out)"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "verify after recover --cut ($out)"
eq "$("$SB" dump "$L/orders" | wc -l)" 299 "records after recover --cut"

# bit rot in a sealed segment before the newest: refused, and nothing said
# done that was not (it said "time index rebuilt" for the refused topic,
# an index rebuilt in memory only, never written)
fresh
mid=$(ls "$O"/*.seg | sed -n 2p)
printf '\252' | dd of="$mid" bs=1 seek=600 conv=notrunc status=none
before=$(cd "$O" && ls -l --time-style=+ && cat * | md5sum)
run_rc rc "$SB" recover "$L"
eq "$rc" 1 "bit rot: refused exit ($out)"
has "$out" "cannot be a torn write" "bit rot: the refusal says why"
hasnt "$out" "rebuilt|nothing to recover" "bit rot: no change claimed"
eq "$(cd "$O" && ls -l --time-style=+ && cat * | md5sum)" "$before" "bit rot: recover changed files"

# Bit rot in a block of a sealed compressed segment that later segments
# follow, in a log written through the mount (zstd): recover --cut drops
# that block's records alone (a gap, as in a compacted topic), keeping the
# records of the later segments, also those appended after the damage;
# verify passes; the mount serves every kept record as it was written,
# lists them alone, answers ENOENT for the dropped ones, and .log reads the
# kept records back to back.
FS=$SB_BUILD/streambusfs
Z=$T/z; ZM=$T/zmnt; mkdir -p "$ZM"
sb_cleanup_hooks+=('mountpoint -q "$ZM" && fusermount3 -u "$ZM"')
zdown() { fusermount3 -u "$ZM" || fail "unmount $ZM"; for _ in $(seq 50); do [ -e "$Z/.lock" ] && flock -n "$Z/.lock" true && break; sleep 0.1; done; }
"$FS" -o create,segment_bytes=4096,compression=zstd "$Z" "$ZM" || fail "mount (zstd)"
mkdir "$ZM/t"
python3 - "$ZM/t/.log" <<'PY'
import sys
with open(sys.argv[1], "ab", buffering=0) as f:
    for i in range(300):
        f.write(b"line %05d %s\n" % (i, b"abcdefgh" * (i % 7)))
PY
zseg=$Z/t/00000000000000000060.seg
for _ in $(seq 100); do [ "$(head -c4 "$zseg" 2>/dev/null)" = SBZS ] && break; sleep 0.1; done
eq "$(head -c4 "$zseg")" SBZS "segment 60 compressed in the background"
zdown
# one bit of block 0's stored bytes; the block's offsets from its table
read -r bpos bfirst bend < <(python3 - "$zseg" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
base, nxt, table, nb = struct.unpack_from("<Q", b, 8)[0], struct.unpack_from("<Q", b, 24)[0], \
    struct.unpack_from("<Q", b, 64)[0], struct.unpack_from("<I", b, 72)[0]
rel0, _, at, stored = struct.unpack_from("<IIII", b, table)
end = base + struct.unpack_from("<I", b, table + 32)[0] if nb > 1 else nxt
b[at + stored // 2] ^= 0x10
open(p, "wb").write(b)
print(at, base + rel0, end)
PY
)
run_rc rc "$SB" verify "$Z"
eq "$rc" 1 "verify names the damaged block ($out)"
has "$out" "00000000000000000060.seg: byte $bpos: damaged compressed block 0" "verify: file and byte"
run_rc rc "$SB" recover --cut "$Z"
eq "$rc" 0 "recover --cut of a damaged block ($out)"
has "$out" "^t: 00000000000000000060.seg: damaged compressed block at byte $bpos: offsets $bfirst to $((bend - 1)) \($((bend - bfirst)) records\) dropped, the records after them kept$" "recover --cut says what it dropped"
hasnt "$out" "removed segment|log cut" "no later segment removed"
run_rc rc "$SB" verify "$Z"
eq "$rc" 0 "verify after recover --cut of a block ($out)"
"$FS" "$Z" "$ZM" || fail "remount"
python3 - "$ZM/t" "$bfirst" "$bend" <<'PY' || fail "records after recover --cut of a block"
import errno, os, sys
d, first, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = lambda i: b"line %05d %s\n" % (i, b"abcdefgh" * (i % 7))
kept = [i for i in range(300) if not first <= i < end]
for i in range(300):
    p = os.path.join(d, "%020d" % i)
    if i in kept:
        got = open(p, "rb").read()
        assert got == want(i), "record %d: %r" % (i, got)
    else:
        try:
            open(p, "rb").read()
            raise SystemExit("record %d of the dropped block reads" % i)
        except OSError as e:
            assert e.errno == errno.ENOENT, "record %d: %s" % (i, e)
names = sorted(n for n in os.listdir(d) if not n.startswith("."))
assert names == ["%020d" % i for i in kept], "ls: %d names, %s..." % (len(names), names[55:62])
# .log: the kept records back to back (the segments below the gap move
# up in the stream at each open: no hole where the dropped payloads were)
log = open(os.path.join(d, ".log"), "rb").read()
assert log == b"".join(want(i) for i in kept), ".log: %d bytes, want %d" % (len(log), sum(len(want(i)) for i in kept))
assert os.stat(os.path.join(d, ".log")).st_size == len(log), ".log size"
PY
echo "after the repair" >>"$ZM/t/.log"
eq "$(cat "$ZM/t/00000000000000000300")" "after the repair" "the next append takes offset 300"
zdown

# After a kill -9 the newest segment has no index file (it is written at
# the seal or the close): recover writes it, and says so rather than
# "nothing to recover".
fresh
last=$(ls "$O"/*.seg | tail -1); lname=$(basename "$last")
rm "$O/clean" "${last%.seg}.idx"
run_rc rc "$SB" recover "$L"
eq "$rc" 0 "recover exit, newest index missing ($out)"
has "$out" "^orders: $lname: missing index rebuilt \([0-9]+ entries\)$" "the newest segment's index rebuilt, said"
hasnt "$out" "nothing to recover" "not 'nothing to recover' when it wrote an index"
[ -f "${last%.seg}.idx" ] || fail "newest index not written"

# On a full disk, an index file recover cannot write is an error, named,
# with exit 2: never "rebuilt" or "nothing to recover" with nothing written.
mkdir "$T/small"
mount -t tmpfs -o size=2m tmpfs "$T/small" || fail "cannot mount a tmpfs (root needed)"
sb_cleanup_hooks+=('umount -l "$T/small"')
cp -a "$C" "$T/small/log"
rm "$T/small/log/orders/clean" "$T/small/log/orders/"*.idx
dd if=/dev/zero of="$T/small/fill" bs=4k 2>/dev/null || true
dd if=/dev/zero of="$T/small/fill2" bs=512 2>/dev/null || true
run_rc rc "$SB" recover "$T/small/log"
eq "$rc" 2 "recover on a full disk exit ($out)"
has "$out" "index not saved: No space left on device" "the failed index write named"
hasnt "$out" "nothing to recover" "no 'nothing to recover' on a full disk"
rm "$T/small/fill" "$T/small/fill2"
run_rc rc "$SB" recover "$T/small/log"
eq "$rc" 0 "recover once there is room ($out)"
run_rc rc "$SB" verify "$T/small/log"
eq "$rc" 0 "verify after recover with room ($out)"
hasnt "$out" "missing index" "every index written once there was room"

# errors
run_rc rc "$SB" recover "$T/none"
eq "$rc" 2 "missing dir exit"; eq "$out" "streambus recover: $T/none: No such file or directory" "missing dir"
[ ! -e "$T/none" ] || fail "recover created $T/none"
run_rc rc "$SB" recover "$L" nosuch
eq "$rc" 2 "missing topic exit"; eq "$out" "streambus recover: $L/nosuch: no such topic" "missing topic"
run_rc rc "$SB" recover
eq "$rc" 2 "no args exit"

# A directory that holds no log: the parent of LOG_DIR (recover run one
# level too high), a home directory. Refused (exit 2), nothing written in
# it or in its directories; the LOG_DIR below it named.
fresh
mkdir "$T/up"; mv "$L" "$T/up/log"; mkdir "$T/up/mnt"
before=$(find "$T/up" -printf "%p %s %T@\n" | sort)
run_rc rc "$SB" recover "$T/up"
eq "$rc" 2 "the parent of LOG_DIR: exit ($out)"
has "$out" "holds no log.*did you mean $T/up/log\\?; nothing done" "the parent of LOG_DIR: why, and the LOG_DIR below"
eq "$(find "$T/up" -printf "%p %s %T@\n" | sort)" "$before" "the parent of LOG_DIR: nothing written"
mkdir -p "$T/home/docs" "$T/home/src"; echo x >"$T/home/docs/a.txt"
run_rc rc "$SB" recover "$T/home"
eq "$rc" 2 "a foreign directory: exit ($out)"
eq "$(find "$T/home" | sort | tr '\n' ' ')" "$T/home $T/home/docs $T/home/docs/a.txt $T/home/src " "a foreign directory: nothing written"
# A link to a topic: LOG_DIR is where the topic is, not where the link is.
ln -s "$T/up/log/orders" "$T/up/link"
run_rc rc "$SB" recover "$T/up/link"
eq "$rc" 0 "through a link to a topic: exit ($out)"
eq "$out" "nothing to recover" "through a link to a topic"
eq "$(ls -A "$T/up" | tr '\n' ' ')" "link log mnt " "through a link to a topic: nothing written beside the link"
# A topic directory with no segment in a LOG_DIR (a mkdir cut short): an
# empty log started, and said.
fresh
mkdir "$L/bare"
run_rc rc "$SB" recover "$L"
eq "$rc" 0 "a bare topic directory: exit ($out)"
eq "$out" "bare: no segment file: an empty log started" "a bare topic directory: said"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "verify after a bare topic directory was started ($out)"
echo "t_tool_recover: ok"
