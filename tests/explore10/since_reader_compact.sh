#!/bin/bash
# A `tail -f TOPIC/.since/TIME` (TIME before every record) on a topic with
# cleanup=compact, while keyed records are appended and compaction runs: the .log
# follower beside it prints every record appended (602 lines) and the final `c1`;
# the .since follower prints a different, shorter story (seen: 95 lines ending in a
# value and stuck there, never showing `c1`; or only what was left after compaction,
# from the newest segment on). SPEC §2: `.since/TIME` "grows as `.log` does: `cat`,
# `tail -f` ... work on it"; "Readers and writers are never disturbed" (compaction).
# Usage: tests/explore10/since_reader_compact.sh   (from the worktree root, as root)
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /dev/shm/ex10src.XXXXXX); M=$D/mnt
cleanup() { kill $P1 $P2 2>/dev/null; wait 2>/dev/null; fusermount3 -u "$M" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
mkdir "$D/log" "$M"; "$B/streambusfs" -c /dev/null -o segment_bytes=4096,cleanup=compact "$D/log" "$M" || exit 2
mkdir "$M/t"; echo a >> "$M/t/.log"; sleep 0.1; T=$(date +%s.%N); sleep 0.1
tail -c +1 -f -s 0.2 "$M/t/.since/@$T" > "$D/since.out" 2> "$D/since.err" & P1=$!
tail -c +1 -f -s 0.2 "$M/t/.log" > "$D/log.out" 2> "$D/log.err" & P2=$!
sleep 0.5
for i in $(seq 600); do echo "v$i" > "$M/t/.keys/k$((i % 5))"; done
sleep 3; echo c1 >> "$M/t/.log"; sleep 2
echo ".log follower:   $(wc -l < "$D/log.out") lines, first '$(sed -n 2p "$D/log.out")', last '$(tail -1 "$D/log.out")' $(cat "$D/log.err")"
echo ".since follower: $(wc -l < "$D/since.out") lines, first '$(head -1 "$D/since.out")', last '$(tail -1 "$D/since.out")' $(tr '\n' ' ' < "$D/since.err")"
want=$(sed 1d "$D/log.out")
[ "$(cat "$D/since.out")" = "$want" ] || { echo "BUG: the .since follower did not print what the .log follower printed after 'a'"; exit 1; }
echo ok
