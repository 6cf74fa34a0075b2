#!/usr/bin/env bash
# SPEC §5 Deleting and retention: rm of the oldest record only, rm -r and
# rmdir of topics, an open .log reader while the head goes, retention by
# bytes and by age.
. "$(dirname "$0")/lib.sh"
sb_mount
M=$SB_MNT
mkdir "$M/d" || sb_die "mkdir"
assert_sh_ok 'for i in $(seq 0 9); do echo "del-$i"; done >> "$1"' "$M/d/.log"

case_ "rm of the oldest record advances the topic's start"
assert_ok rm "$M/d/$(rec 0)"
assert_eq "$(for i in $(seq 1 9); do rec "$i"; echo; done)" "$(t ls "$M/d")" "ls after rm of record 0"
assert_fail_with ENOENT cat "$M/d/$(rec 0)"
assert_eq "del-1" "$(t head -n 1 "$M/d/.log")" ".log now starts at record 1"
assert_eq 54 "$(t stat -c %s "$M/d/.log")" "size of .log after rm of record 0"
assert_ok rm "$M/d/1"
assert_eq "$(rec 2)" "$(t ls "$M/d" | head -1)" "rm of the unpadded name of the oldest"

case_ "rm of any other record: EPERM"
assert_fail_with EPERM rm "$M/d/$(rec 5)"
assert_fail_with EPERM rm "$M/d/$(rec 9)"
assert_fail_with EPERM rm -f "$M/d/$(rec 3)"
assert_fail_with EPERM rm "$M/d/.log"
assert_eq 8 "$(sb_count "$M/d")" "records left after refused rm"
assert_eq "del-5" "$(t cat "$M/d/$(rec 5)")" "record 5 still there"

case_ "the start survives a remount; offsets go on"
sb_remount
assert_eq "$(rec 2)" "$(t ls "$M/d" | head -1)" "first record after remount"
assert_sh_ok 'echo del-10 >> "$1"' "$M/d/.log"
assert_eq "$(rec 10)" "$(t ls "$M/d" | tail -1)" "the next append after remount is offset 10"

case_ "a reader with .log open keeps consistent positions while the head is removed"
out=$(t python3 - "$M/d" <<'EOF'
import os, subprocess, sys
d = sys.argv[1]
fd = os.open(os.path.join(d, ".log"), os.O_RDONLY)
first = os.read(fd, 6)                       # "del-2\n"
end = os.lseek(fd, 0, os.SEEK_END)           # the open's own extent
os.lseek(fd, 6, os.SEEK_SET)
subprocess.run(["rm", os.path.join(d, "%020d" % 2)], check=True)
# its end stays where it was: its positions did not move
end2 = os.lseek(fd, 0, os.SEEK_END)
if end2 != end:
    print("SEEK_END after rm: %d, before: %d" % (end2, end))
os.lseek(fd, 6, os.SEEK_SET)
rest = b""
while True:
    b = os.read(fd, 7)
    if not b:
        break
    rest += b
os.close(fd)
print(repr(first), repr(rest))
EOF
)
assert_eq "b'del-2\\n' b'del-3\\ndel-4\\ndel-5\\ndel-6\\ndel-7\\ndel-8\\ndel-9\\ndel-10\\n'" "$out" "reads go on where they were after rm of the head"
assert_eq "del-3" "$(t head -n 1 "$M/d/.log")" "a new open of .log starts at the new head"

case_ "tail -f of .log goes on while the head is removed"
timeout 60 tail -f "$M/d/.log" >"$SB_TMP/follow" 2>"$SB_TMP/follow.err" &
tpid=$!
sb_wait_until '[ "$(wc -l <"$SB_TMP/follow")" -ge 8 ]' 5 || assert_fail_now "tail -f printed no initial lines"
assert_ok rm "$M/d/$(rec 3)" "$M/d/$(rec 4)"
assert_sh_ok 'echo after-head-removed >> "$1"' "$M/d/.log"
sb_wait_until 'grep -q "^after-head-removed\$" "$SB_TMP/follow"' $((3 * SB_SLOW)) ||
	assert_fail_now "tail -f did not print the append made after the head was removed ($(cat "$SB_TMP/follow.err"))"
pass_
sleep 1.5
kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null
assert_eq "$(printf 'del-%s\n' 3 4 5 6 7 8 9 10; echo after-head-removed)" "$(cat "$SB_TMP/follow")" "tail -f printed each line once, nothing reprinted"
assert_true '! grep -q truncated "$SB_TMP/follow.err"' "no 'file truncated' from tail -f ($(cat "$SB_TMP/follow.err"))"

case_ "rm of every record in glob order empties the topic; rmdir then works"
assert_ok rm "$M/d"/0*
assert_eq 0 "$(sb_count "$M/d")" "topic empty after rm d/*"
assert_eq 0 "$(t stat -c %s "$M/d/.log")" "empty .log"
assert_ok rmdir "$M/d"
assert_fail_with ENOENT ls "$M/d"

case_ "rmdir of an empty topic; ENOTEMPTY otherwise"
assert_ok mkdir "$M/empty"
assert_ok rmdir "$M/empty"
assert_fail_with ENOENT stat "$M/empty"
assert_true '! t ls "$M" | grep -qx empty' "the removed topic is not listed"
assert_ok mkdir "$M/full"
assert_sh_ok 'echo x >> "$1"' "$M/full/.log"
assert_fail_with ENOTEMPTY rmdir "$M/full"
assert_eq x "$(t cat "$M/full/$(rec 0)")" "the record is still there after a refused rmdir"

case_ "rm -r of a topic"
assert_sh_ok 'seq 1 500 >> "$1"' "$M/full/.log"
echo keyed >"$SB_TMP/k"
assert_ok cp "$SB_TMP/k" "$M/full/"
assert_ok rm -r "$M/full"
assert_fail_with ENOENT stat "$M/full"
assert_true '! t ls "$M" | grep -qx full' "rm -r removed the topic"
sb_remount
assert_fail_with ENOENT stat "$M/full"
assert_ok mkdir "$M/full"
assert_eq 0 "$(sb_count "$M/full")" "a topic made again under the same name is empty"
assert_ok rm -rf "$M/full"

case_ "retention by bytes drops old segments in the background"
sb_remount -o segment_bytes=4096,retention_bytes=16384
mkdir "$M/ret"
# one write per line (a segment rolls between appends); 100 KB in all
assert_sh_ok 'exec 3>>"$1"; for i in $(seq -w 0 999); do echo "retention-line-$i-------------------------------------------------------------------------------" >&3; done' "$M/ret/.log"
sb_wait_until '[ "$(t ls "$M/ret" | head -1)" != "$(rec 0)" ]' $((15 * SB_SLOW)) ||
	assert_fail_now "retention_bytes=16384: record 0 still there after $((15 * SB_SLOW)) s"
pass_
sb_wait_until '[ "$(t stat -c %s "$M/ret/.log")" -le $((16384 + 2 * 4096)) ]' $((15 * SB_SLOW)) ||
	assert_fail_now "retention_bytes=16384: .log still $(t stat -c %s "$M/ret/.log") bytes"
pass_
assert_eq "$(rec 999)" "$(t ls "$M/ret" | tail -1)" "the newest record is kept"
first=$(t ls "$M/ret" | head -1)
assert_eq "$(t cat "$M/ret/$first")" "$(t head -n 1 "$M/ret/.log")" ".log starts at the first retained record"
assert_eq "$(t ls "$M/ret" | wc -l)" "$(t cat "$M/ret/.log" | wc -l)" "records and .log lines agree"
assert_true '[ "$(ls "$SB_LOG/ret"/*.seg | wc -l)" -le 8 ]' "old segment files are gone from the log dir ($(ls "$SB_LOG/ret" | wc -l) files)"
# a reader of .log that retention overtook: what it had not read is gone,
# ENODATA (no data there any more), never ENOENT (its file is open) nor
# other records' bytes; from the new start on it reads on
mkdir "$M/ret2"
assert_sh_ok 'echo first >>"$1"' "$M/ret2/.log"
out=$(pyerr 'import time
fd = os.open(sys.argv[2] + "/.log", os.O_RDONLY)
with open(sys.argv[2] + "/.log", "a") as f:
    for i in range(1000):
        f.write("retention-line-%04d-------------------------------------------------------------------------------\n" % i)
        f.flush()
for _ in range(10 * int(sys.argv[3])):
    if sorted(os.listdir(sys.argv[2]))[0] != "0" * 20:
        break
    time.sleep(0.1)
os.pread(fd, 6, 0)' "$M/ret2" $((15 * SB_SLOW)))
assert_eq ENODATA "$out" "a .log reader overtaken by retention: ENODATA at what is gone"

case_ "retention by age drops old segments in the background"
sb_remount -o segment_bytes=4096,retention_ms=2000
mkdir "$M/age"
assert_sh_ok 'exec 3>>"$1"; for i in $(seq -w 0 299); do echo "age-line-$i-------------------------------------------------------------------------------" >&3; done' "$M/age/.log"
sleep 2.5
# new appends roll a new segment: the old ones are then past retention_ms
assert_sh_ok 'exec 3>>"$1"; for i in $(seq -w 300 399); do echo "age-line-$i-------------------------------------------------------------------------------" >&3; done' "$M/age/.log"
sb_wait_until '[ "$(t ls "$M/age" | head -1)" != "$(rec 0)" ]' $((15 * SB_SLOW)) ||
	assert_fail_now "retention_ms=2000: record 0 still there after $((15 * SB_SLOW)) s"
pass_
assert_eq "$(rec 399)" "$(t ls "$M/age" | tail -1)" "the newest record is kept"
first=$(t ls "$M/age" | head -1)
assert_true '[ "$((10#$first))" -gt 0 ]' "the start moved ($first)"
sb_umount
