#!/bin/bash
# A `tail -f TOPIC/.since/TIME` reader breaks when `rm` removes the oldest records
# of the topic up into what it has already read: tail reports "file truncated",
# then "error reading ...: No data available" (ENODATA), and stops following, so
# it never prints the records appended next. A `tail -f TOPIC/.log` reader in the
# same run goes on (README: "A reader that has `.log` open keeps consistent positions
# while the head is removed"; SPEC §2: `.since/TIME` "is a read-only file like `.log`
# ... and grows as `.log` does: `cat`, `tail -f` ... work on it").
# Usage: tests/explore10/since_reader_rm_head.sh   (from the worktree root, as root)
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /dev/shm/ex10srh.XXXXXX); M=$D/mnt
cleanup() { kill $P1 $P2 2>/dev/null; wait 2>/dev/null; fusermount3 -u "$M" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
mkdir "$D/log" "$M"; "$B/streambusfs" -c /dev/null "$D/log" "$M" || exit 2
mkdir "$M/t"
for i in $(seq -w 10); do echo "a$i"; done >> "$M/t/.log"      # offsets 0-9, before T
sleep 0.1; T=$(date +%s.%N); sleep 0.1
for i in $(seq -w 10); do echo "b$i"; done >> "$M/t/.log"      # offsets 10-19, after T
tail -c +1 -f -s 0.2 "$M/t/.since/@$T" > "$D/since.out" 2> "$D/since.err" & P1=$!
tail -c +1 -f -s 0.2 "$M/t/.log" > "$D/log.out" 2> "$D/log.err" & P2=$!
sleep 1
for i in $(seq 0 14); do rm "$M/t/$(printf %020d $i)"; done      # a01-a10 and b01-b05
echo c1 >> "$M/t/.log"; echo c2 >> "$M/t/.log"
sleep 2
echo ".log reader:  $(tr '\n' ' ' < "$D/log.out")  stderr: $(cat "$D/log.err")"
echo ".since reader: $(tr '\n' ' ' < "$D/since.out")  stderr: $(tr '\n' ' ' < "$D/since.err")"
want=$(for i in $(seq -w 10); do echo "b$i"; done; echo c1; echo c2)
if [ "$(cat "$D/since.out")" != "$want" ]; then echo "BUG: the .since reader did not print b01..b10 c1 c2 once each"; exit 1; fi
echo ok
