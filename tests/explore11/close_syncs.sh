#!/bin/bash
# close_syncs.sh BUILD N: fdatasync+fsync calls of the daemon's close, N topics of one record
B=$1; N=$2; W=/tmp/e11cnt
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
strace -f -qq -e trace=fdatasync,fsync -o $W/strace.out -p $pid &
st=$!
sleep 0.5
fusermount3 -u $W/M
while kill -0 $pid 2>/dev/null; do sleep 0.05; done
sleep 0.2; kill $st 2>/dev/null; wait $st 2>/dev/null
echo "N=$N: $(grep -c 'fdatasync(' $W/strace.out) fdatasync, $(grep -c 'fsync(' $W/strace.out) fsync in the close"
