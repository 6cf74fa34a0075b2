#!/usr/bin/env bash
# get_opens_all_topics.sh [NTOPICS] - `streambus get LOG TOPIC KEY` (one key of
# one topic) opens every topic of LOG_DIR: its system calls grow with the
# number of topics (strace -c), 0.18 s at 200 topics, 0.84 s at 5,000.
# SB_BUILD (default build). Cleans up after itself.
set -u
N=${1:-2000}
B=$(realpath "${SB_BUILD:-build}")
mkdir -p /tmp/t9
D=$(mktemp -d /tmp/t9/getall.XXXX)
cleanup() { fusermount3 -u "$D/mnt" 2>/dev/null || fusermount3 -uz "$D/mnt" 2>/dev/null; sleep 1; rm -rf "$D"; }
trap cleanup EXIT INT TERM
mkdir -p "$D/log" "$D/mnt"
timeout 30 "$B/streambusfs" -c /dev/null "$D/log" "$D/mnt" || exit 2
timeout 600 bash -c 'for i in $(seq -w 1 '"$N"'); do mkdir "$1/t$i" && echo v >"$1/t$i/.keys/k"; done' x "$D/mnt"
timeout 60 fusermount3 -u "$D/mnt"; sleep 1
strace -f -c -o "$D/st" timeout 60 "$B/streambus" get "$D/log" "t$(printf %0${#N}d 1)" k >/dev/null
s=$( { /usr/bin/time -f '%e' timeout 60 "$B/streambus" get "$D/log" "t$(printf %0${#N}d 1)" k >/dev/null; } 2>&1)
echo "RESULT: topics in LOG_DIR: $N; get of one key: $(awk '$NF=="openat"{print $4}' "$D/st") openat, $(awk '$NF=="getdents64"{print $4}' "$D/st") getdents64, $(awk '$NF=="total"{print $4}' "$D/st") system calls, $s s"
