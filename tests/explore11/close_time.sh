#!/bin/bash
# close_time.sh BUILD N [syncs]: seconds from fusermount3 -u to the daemon's exit, N topics
# of one record; with `syncs`, also the fdatasync and fsync calls of the close (strace)
B=$1; N=$2; W=/tmp/e11close
rm -rf $W; mkdir -p $W/L $W/M
$B/streambusfs $W/L $W/M || exit 2
pid=$(pgrep -f "streambusfs $W/L $W/M" | head -1)
python3 - $W/M $N <<'PY'
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = "%s/t%05d" % (m, i)
    os.mkdir(d)
    with open(d + "/.log", "a") as f: f.write("r%d\n" % i)
PY
sleep 2
if [ "${3:-}" = syncs ]; then
	strace -f -qq -e trace=fdatasync,fsync -o $W/strace.out -p $pid &
	st=$!
	sleep 0.5
fi
t1=$(date +%s.%N); fusermount3 -u $W/M
while kill -0 $pid 2>/dev/null; do sleep 0.05; done; t2=$(date +%s.%N)
echo "N=$N daemon exit $(echo "$t2-$t1" | bc) s after fusermount3 -u"
if [ "${3:-}" = syncs ]; then
	sleep 0.2; kill $st 2>/dev/null; wait $st 2>/dev/null
	echo "N=$N: $(grep -c 'fdatasync(' $W/strace.out) fdatasync, $(grep -c 'fsync(' $W/strace.out) fsync in the close"
fi
rm -rf $W
