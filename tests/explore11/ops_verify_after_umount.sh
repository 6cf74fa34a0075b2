#!/bin/bash
# ops_verify_after_umount.sh [ROUNDS] - `fusermount3 -u MNT && streambus verify LOG_DIR`
# (a sysadmin's post-unmount check). SPEC 1: a user of LOG_DIR started right after
# fusermount3 -u returns "waits (a few seconds at most, saying so) for the previous
# daemon to let go". verify instead decides at its start that LOG_DIR is "in use
# (mounted?)" (the finishing daemon still holds .lock), checks the log while the daemon
# is still writing its indexes, and does not count what it finds ("missing index",
# "stale index" ... "(in use: not counted)"). Prints each round where that happened.
# Run from /work/main as root; SB_BUILD (default build).
set -u
B=${SB_BUILD:-build}; case $B in /*) ;; *) B=$PWD/$B;; esac
N=${1:-10}
D=/tmp/e11ops/verify_after_umount; rm -rf $D; mkdir -p $D/log $D/mnt
cleanup() { fusermount3 -u $D/mnt 2>/dev/null || umount -l $D/mnt 2>/dev/null; for p in $(pgrep -f "streambusfs.*$D/mnt"); do kill $p; done; }
trap cleanup EXIT
hit=0
for r in $(seq 1 $N); do
  nice -n 10 $B/streambusfs -o sync=never,segment_bytes=1M $D/log $D/mnt || { echo "mount failed"; exit 2; }
  mkdir -p $D/mnt/t
  seq -f "round $r line %g padding padding padding padding padding padding padding" 1 3000 >> $D/mnt/t/.log
  fusermount3 -u $D/mnt
  out=$($B/streambus verify $D/log 2>&1); rc=$?
  if grep -q 'in use (mounted?)' <<<"$out"; then
    hit=$((hit+1)); echo "round $r: verify exit $rc right after fusermount3 -u returned (nothing is mounted: $(grep -c " $D/mnt " /proc/mounts) mounts):"
    sed 's/^/    /' <<<"$out" | head -8
  fi
  sleep 1   # let the daemon finish before the next round
done
echo "$hit of $N verify runs right after fusermount3 -u checked a log still being closed (in use (mounted?), problems not counted)"
later=$($B/streambus verify $D/log 2>&1); echo "verify a second later: exit $? ($(tail -1 <<<"$later"))"
