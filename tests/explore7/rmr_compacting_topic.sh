#!/bin/bash
# rm -r of a compacted topic right after many keyed writes (its compaction
# busy), no other writer: does rm -r remove it, and what does a remount show?
# usage: SB_BUILD=build bash tests/explore7/ rmr_compacting_topic.sh [ROUNDS]
B=$(realpath "${SB_BUILD:-build}")
D=$(mktemp -d /tmp/t7/rmc.XXXXXX); mkdir $D/log $D/mnt
pidof_d() { awk 'NR==1{print $1}' $D/log/.lock 2>/dev/null; }
um() { P=$(pidof_d); fusermount3 -u $D/mnt && while [ -n "$P" ] && kill -0 $P 2>/dev/null; do sleep 0.1; done; }
cleanup() { cd /; mountpoint -q $D/mnt && um; [ -z "$KEEP" ] && rm -rf $D; }
trap cleanup EXIT
OPTS=${OPTS:-segment_bytes=4096,cleanup=compact}
$B/streambusfs -c /dev/null -o $OPTS $D/log $D/mnt || exit 1
M=$D/mnt; PAD=$(printf '%0300d' 0); bad=0
for r in $(seq ${1:-5}); do
  mkdir $M/T$r
  python3 -c "
import sys
for i in range(1500):
    with open('$M/T$r/.keys/k%d' % (i % 5), 'w') as f: f.write('value %d $PAD\n' % i)
"
  rm -rf $M/T$r 2>$D/rm.err; rc=$?
  echo "round $r: rm -r exit $rc $(sed 's/.*: //' $D/rm.err | sort | uniq -c | tr '\n' ';') LOG_DIR/T$r: [$(ls $D/log/T$r 2>&1 | head -4 | tr '\n' ' ')]"
  [ $rc -ne 0 ] && bad=$((bad+1))
done
sleep 2
echo "mounted: topics [$(ls $M | tr '\n' ' ')]"
for t in $(ls $M); do
  echo "  $t: ls [$(ls $M/$t | wc -l) records]; cat .log: $(cat $M/$t/.log 2>&1 | wc -c) bytes $(cat $M/$t/.log 2>&1 >/dev/null | sed 's/.*: //')"
  echo "  $t: echo x >> .log: $( (echo x >> $M/$t/.log) 2>&1 | sed 's/.*: //')exit $?; rmdir: $(rmdir $M/$t 2>&1 | sed 's/.*: //'); mkdir: $(mkdir $M/$t 2>&1 | sed 's/.*: //')"
done
um
$B/streambus verify -q --no-progress $D/log; echo "verify exit $?"
$B/streambusfs -c /dev/null -o $OPTS $D/log $D/mnt 2>&1 | sed 's/^/remount: /'
echo "after a remount: topics [$(ls $M | tr '\n' ' ')]"; for t in $(ls $M); do echo "  $t: $(ls $M/$t 2>&1 | wc -l) records, .keys [$(ls $M/$t/.keys 2>&1| tr '\n' ' ')]"; done
