#!/bin/bash
# ops_rm_topic_after_umount.sh [ROUNDS] - `fusermount3 -u MNT && rm -rf LOG_DIR/TOPIC`
# (drop a topic offline). fusermount3 -u returns while the daemon is still closing
# the store and writing index files and the clean marker into LOG_DIR, so `rm -rf`
# races it: rm fails "Directory not empty" and leaves a topic directory holding
# files written after rm went through (index / clean marker without their segment),
# which the next mount refuses ("missing, the newest segment ... at the clean close:
# records lost, which cannot be a torn write"; EIO until `recover --cut`).
# Also prints how long the daemon goes on after fusermount3 -u returned.
# Run from /work/main as root; SB_BUILD (default build).
set -u
B=${SB_BUILD:-build}; case $B in /*) ;; *) B=$PWD/$B;; esac
N=${1:-16}
D=/tmp/e11ops/rm_after_umount; rm -rf $D; mkdir -p $D
cleanup() { for m in $D/mnt; do fusermount3 -u $m 2>/dev/null || umount -l $m 2>/dev/null; done; }
trap cleanup EXIT
bad=0
for r in $(seq 1 $N); do
  rm -rf $D/log $D/mnt; mkdir -p $D/log $D/mnt
  nice -n 10 $B/streambusfs -o segment_bytes=4096 $D/log $D/mnt || exit 2
  mkdir $D/mnt/keep $D/mnt/drop
  for t in keep drop; do seq -f "$t %g ........................................" 1 ${LINES_PER_TOPIC:-20000} >> $D/mnt/$t/.log; done
  pid=$(pgrep -f "streambusfs -o segment_bytes=4096 $D/log $D/mnt")
  fusermount3 -u $D/mnt
  t0=$(date +%s%N)
  sleep $(printf "0.%03d" $(( (r - 1) * 40 % 1000 )))   # sweep the moment of rm: 0, 40, 80 ... ms
  rmout=$(rm -rf $D/log/drop 2>&1); rmrc=$?
  while kill -0 $pid 2>/dev/null; do sleep 0.005; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  left=$(ls -A $D/log/drop 2>/dev/null | tr '\n' ' ')
  out=$(nice -n 10 $B/streambusfs $D/log $D/mnt 2>&1); mrc=$?
  refused=$(grep -c 'refused' <<<"$out")
  cat $D/mnt/keep/.log >/dev/null 2>&1 || echo "round $r: keep unreadable"
  fusermount3 -u $D/mnt 2>/dev/null
  while pgrep -f "streambusfs $D/log $D/mnt" >/dev/null; do sleep 0.05; done
  if [ $rmrc -ne 0 ] || [ -n "$left" ] || [ "$refused" -gt 0 ]; then
    bad=$((bad+1))
    echo "round $r (rm after $(( (r-1)*40 )) ms): daemon exited ${ms} ms after fusermount3 -u returned; rm -rf exit $rmrc ($rmout); left in LOG_DIR/drop: ${left:-nothing}"
    [ "$refused" -gt 0 ] && echo "    next mount (exit $mrc): $(grep refused <<<"$out" | head -1 | cut -c1-300)"
  else
    echo "round $r (rm after $(( (r-1)*40 )) ms): ok (daemon exited ${ms} ms after fusermount3 -u returned)"
  fi
done
echo "$bad of $N rounds: rm -rf of a topic directory right after fusermount3 -u raced the daemon"
