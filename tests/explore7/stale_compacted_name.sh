#!/bin/bash
# A record removed by compaction still stats as present (for up to 10 s, the
# kernel's cached entry), while ls skips it and cat says ENOENT.
# usage: SB_BUILD=build bash tests/explore7/ stale_compacted_name.sh
B=$(realpath "${SB_BUILD:-build}")
D=$(mktemp -d /tmp/t7/stale.XXXXXX); mkdir $D/log $D/mnt
trap 'fusermount3 -u $D/mnt 2>/dev/null; rm -rf $D' EXIT
$B/streambusfs -c /dev/null -o cleanup=compact,segment_bytes=4096 $D/log $D/mnt || exit 1
T=$D/mnt/T; mkdir $T
echo old > $T/.keys/k                        # offset 0
stat -c 'before: %n size %s' $T/00000000000000000000   # the kernel caches the name
for i in $(seq 1 100); do printf 'x%.0s' $(seq 60) >> $T/.log; echo >> $T/.log; done  # roll segments
echo new > $T/.keys/k                        # the latest of k: offset 0 may go
for i in $(seq 1 100); do echo y$i >> $T/.log; done
for i in $(seq 50); do ls $T | grep -q '^00000000000000000000$' || break; sleep 0.1; done
echo "ls lists offset 0: $(ls $T | grep -c '^00000000000000000000$')"
stat -c 'after compaction: stat says %n exists, size %s' $T/00000000000000000000 && \
  { cat $T/00000000000000000000; echo "cat exit $?"; }
test -e $T/00000000000000000000 && echo "test -e: exists"
sleep 11
stat $T/00000000000000000000 2>&1 | head -1
