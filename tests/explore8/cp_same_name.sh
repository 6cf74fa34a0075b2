#!/bin/bash
# cp_same_name.sh [N] - two shells each `cp /etc/hostname t/same` N times at
# once. Counts cp's failures by message, the records, and the empty records
# (appended by cp's that failed: "cannot fstat ...: No such file or directory").
N=${1:-500}
B=${SB_BUILD:-build}; B=$(realpath $B)
T=/tmp/t8/cpsame; fusermount3 -u $T/mnt 2>/dev/null; rm -rf $T; mkdir -p $T/log $T/mnt
$B/streambusfs -c /dev/null $T/log $T/mnt || exit 1
mkdir $T/mnt/t
for p in 1 2; do
  (ok=0; for i in $(seq 1 $N); do cp /etc/hostname $T/mnt/t/same 2>>$T/err$p && ok=$((ok+1)); done; echo $ok > $T/ok$p) &
done
wait
echo "cp exit 0: $(( $(cat $T/ok1) + $(cat $T/ok2) )) of $((2*N))"
cat $T/err1 $T/err2 | sed "s|$T|T|g" | sort | uniq -c
sleep 2.5
echo "latest value of key same: '$(cat $T/mnt/t/.keys/same)'"
fusermount3 -u $T/mnt; sleep 0.3
echo "records by value:"; $B/streambus dump $T/log t | awk '{print $5}' | sort | uniq -c
