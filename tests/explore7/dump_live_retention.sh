#!/bin/bash
# streambus dump (and verify/stat?) of a mounted LOG_DIR while retention drops
# segments: "cannot open: ...seg: No such file or directory (the topic is left
# out)" then "no such topic", exit 2, for a topic that exists.
# usage: SB_BUILD=build bash tests/explore7/ dump_live_retention.sh [SECONDS]
B=$(realpath "${SB_BUILD:-build}")
D=$(mktemp -d /tmp/t7/dlr.XXXXXX); mkdir $D/log $D/mnt
stop() { touch $D/stop; wait $W 2>/dev/null; P=$(awk "NR==1{print \$1}" $D/log/.lock); fusermount3 -u $D/mnt && { while kill -0 $P 2>/dev/null; do sleep 0.1; done; rm -rf $D; }; }
trap stop EXIT
$B/streambusfs -c /dev/null -o segment_bytes=4096,retention_bytes=20000 $D/log $D/mnt || exit 1
mkdir $D/mnt/T
( while [ ! -e $D/stop ]; do seq 1 50 | sed 's/^/some line of a record /' >> $D/mnt/T/.log; done ) 2>/dev/null & W=$!
end=$((SECONDS + ${1:-20})); n=0; bad=0
while [ $SECONDS -lt $end ]; do
  for cmd in dump verify stat; do
    n=$((n+1))
    opt=; [ $cmd = verify ] && opt=--no-progress
    $B/streambus $cmd $opt $D/log T >$D/out 2>&1; rc=$?
    out=$(grep -v '^offset=' $D/out | tail -4)
    [ $rc -ne 0 ] && { echo "== $cmd exit $rc"; cat $D/out; } >> ${FAILLOG:-/dev/null}
    echo "$cmd runs"; grep -q warning $D/out && echo "$cmd rc $rc with a warning: $(grep warning $D/out | head -1 | sed "s/[0-9]\{20\}/N/g; s,/tmp/t7/dlr[^ ]*,DIR,g")"
    if [ $rc -ne 0 ]; then echo "$cmd exit $rc: $(echo "$out" | tr '\n' ' ' | sed 's/[0-9]\{20\}/N/g; s,/tmp/t7/dlr[^ ]*,DIR,g')"; fi
  done
done | sort | uniq -c | sort -rn
