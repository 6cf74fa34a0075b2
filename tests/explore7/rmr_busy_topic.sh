#!/bin/bash
# rm -r of a compacted topic while two writers append (lines to .log, values
# to .keys/k0..k4), then, once the writers stopped, a look at the topic and
# rm -r again.  Seen: the second rm -r fails (EPERM on listed records,
# ENOTEMPTY on an empty-looking topic), `cat T/.log` EIO, the listing
# starting far above the on-disk start, and after a clean unmount and a
# remount the records rm had removed are back.
# usage: SB_BUILD=build bash tests/explore7/ rmr_busy_topic.sh [ROUNDS]
B=$(realpath "${SB_BUILD:-build}")
D=$(mktemp -d /tmp/t7/rmr.XXXXXX); mkdir $D/log $D/mnt
cleanup() { cd /; P=$(awk 'NR==1{print $1}' $D/log/.lock 2>/dev/null); fusermount3 -u $D/mnt 2>/dev/null; while [ -n "$P" ] && kill -0 $P 2>/dev/null; do sleep 0.1; done; [ -z "$KEEP" ] && rm -rf $D; }
trap cleanup EXIT
OPTS=${OPTS:-segment_bytes=4096,compression=zstd,cleanup=compact,key_memtable_bytes=4096}
$B/streambusfs -c /dev/null -o $OPTS $D/log $D/mnt || exit 1
M=$D/mnt; fails=0; PAD=$(printf '%0300d' 0)
for r in $(seq ${1:-5}); do
  mkdir $M/T
  for w in 1 2; do ( i=0; while [ ! -e $D/stop ]; do i=$((i+1));
      echo "line $w $i $PAD" >> $M/T/.log; echo "value $w $i $PAD" > $M/T/.keys/k$((i % 5)); done 2>/dev/null ) & done
  sleep 1; rm -rf $M/T 2>$D/rm1.err; touch $D/stop; wait; rm -f $D/stop
  echo "round $r: first rm -r (during the writes): $(sed 's/.*: //' $D/rm1.err | sort | uniq -c | tr '\n' ';')"
  [ -d $M/T ] || continue
  n=$(ls $M/T | wc -l); first=$(ls $M/T | head -1)
  echo "   after the writers stopped: ls T: $n records from ${first:-none}; .keys: [$(ls $M/T/.keys | tr '\n' ' ')]"
  cat $M/T/.log >/dev/null 2>$D/cat.err || echo "   cat T/.log: $(cat $D/cat.err)"
  $B/streambus stat $D/log T 2>&1 | tail -1 | sed 's/^/   on disk (streambus stat): /'
  if ! rm -rf $M/T 2>$D/rm2.err; then
     fails=$((fails+1))
     echo "   second rm -r: $(sed 's/.*: //' $D/rm2.err | sort | uniq -c | tr '\n' ';')"
     echo "   ls T now: $(ls $M/T | wc -l) records from $(ls $M/T | head -1)"
     break
  fi
done
echo "$fails failing round(s)"
if [ $fails -gt 0 ]; then
  before=$(ls $M/T | wc -l); bfirst=$(ls $M/T | head -1)
  P=$(awk 'NR==1{print $1}' $D/log/.lock); fusermount3 -u $M; while kill -0 $P 2>/dev/null; do sleep 0.1; done
  $B/streambus verify --no-progress -q $D/log; echo "verify exit $?"
  $B/streambusfs -c /dev/null -o $OPTS $D/log $D/mnt 2>&1 | sed 's/^/remount: /'
  echo "before the unmount: $before records from $bfirst; after a remount: $(ls $M/T | wc -l) records from $(ls $M/T | head -1)"
fi
