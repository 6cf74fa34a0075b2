#!/bin/bash
# data_remount_many_topics.sh [NTOPICS] - with a few thousand topics written since
# the mount, a mount started right after `fusermount3 -u` returns fails: the old
# daemon takes longer than the 10 s the new one waits (SPEC §1: "A mount ... started
# right after fusermount3 -u returns works: it waits (a few seconds at most, saying
# so) for the previous daemon to let go instead of failing").
# Run from /work/main as root.  SB_BUILD (default build).  NTOPICS default 10000.
set -u
B=$(realpath "${SB_BUILD:-build}")
FS=$B/streambusfs; SB=$B/streambus
N=${1:-10000}
W=/tmp/e11data/repro-remount
cleanup() {
  fusermount3 -u "$W/M" 2>/dev/null || umount -l "$W/M" 2>/dev/null
  for p in $(pgrep -f "streambusfs $W/L" || true); do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/L" "$W/M"
nice -n 10 "$FS" "$W/L" "$W/M" || { echo "mount failed"; exit 2; }
pid=$(pgrep -f "streambusfs $W/L $W/M" | head -1)
echo "creating $N topics, one record each ..."
for i in $(seq -w 1 "$N"); do mkdir "$W/M/t$i" && echo "r$i" >> "$W/M/t$i/.log"; done
t1=$(date +%s.%N); fusermount3 -u "$W/M"; t2=$(date +%s.%N)
echo "fusermount3 -u returned after $(echo "$t2-$t1" | bc) s; mounting again at once:"
nice -n 10 "$FS" "$W/L" "$W/M"; rc=$?; t3=$(date +%s.%N)
echo "mount exit status $rc after $(echo "$t3-$t2" | bc) s"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; t4=$(date +%s.%N)
echo "the first daemon exited $(echo "$t4-$t2" | bc) s after fusermount3 -u returned"
if [ $rc -ne 0 ]; then echo "FAIL: mount right after unmount refused (expected: it waits and works)"; else echo "ok: mounted"; fi
