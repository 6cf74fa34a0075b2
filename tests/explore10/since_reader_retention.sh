#!/bin/bash
# Same cause as since_reader_rm_head.sh, through retention: a `tail -f
# TOPIC/.since/TIME` that keeps up with the appends dies ("file truncated", then
# "error reading ...: No data available") once retention drops a segment it has
# already read, while a `tail -f TOPIC/.log` beside it goes on. Afterwards it prints
# nothing of what is appended next. Usage: from the worktree root, as root.
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /dev/shm/ex10srr.XXXXXX); M=$D/mnt
cleanup() { kill $P1 $P2 2>/dev/null; wait 2>/dev/null; fusermount3 -u "$M" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
mkdir "$D/log" "$M"; "$B/streambusfs" -c /dev/null -o segment_bytes=4096,retention_bytes=8192 "$D/log" "$M" || exit 2
mkdir "$M/t"; echo a >> "$M/t/.log"; sleep 0.1; T=$(date +%s.%N); sleep 0.1
tail -c +1 -f -s 0.2 "$M/t/.since/@$T" > "$D/since.out" 2> "$D/since.err" & P1=$!
tail -c +1 -f -s 0.2 "$M/t/.log" > "$D/log.out" 2> "$D/log.err" & P2=$!
sleep 1
for i in $(seq 2000); do echo "b $i"; done >> "$M/t/.log"; sleep 3
echo last >> "$M/t/.log"; sleep 2
echo ".log reader:   last line '$(tail -1 "$D/log.out")', alive: $(kill -0 $P2 2>/dev/null && echo yes || echo no), stderr: $(cat "$D/log.err")"
echo ".since reader: last line '$(tail -1 "$D/since.out")', alive: $(kill -0 $P1 2>/dev/null && echo yes || echo no), stderr: $(tr '\n' ' ' < "$D/since.err")"
[ "$(tail -1 "$D/since.out")" = last ] || { echo "BUG: the .since follower stopped at retention"; exit 1; }
echo ok
