#!/bin/bash
# rename_over_open.sh - deterministic: B opens t/dst and writes; A writes
# t/.dst.tmp, closes it and renames it onto t/dst (mv); B writes the rest and
# closes. Every call returns success; the topic then holds A's record only:
# B's acknowledged record is lost. (B in python: a bash `exec 3>` descriptor
# ends the file at each redirection, README.)
B=${SB_BUILD:-build}; B=$(realpath $B)
T=/tmp/t8/renopen; fusermount3 -u $T/mnt 2>/dev/null; rm -rf $T; mkdir -p $T/log $T/mnt
$B/streambusfs -c /dev/null $T/log $T/mnt || exit 1
mkdir $T/mnt/t
python3 - $T/mnt/t <<'PY'
import os, sys, subprocess
m = sys.argv[1]
fb = os.open(m + '/dst', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b'B: first half, ')
with open(m + '/.dst.tmp', 'wb') as f:
    f.write(b'A: whole\n')
subprocess.run(['mv', m + '/.dst.tmp', m + '/dst'], check=True); print('A: mv ok')
os.write(fb, b'second half\n'); print('B: write ok')
os.close(fb); print('B: close ok')
PY
sleep 0.5
fusermount3 -u $T/mnt; sleep 0.3
echo "--- the topic:"; $B/streambus dump $T/log t
