#!/bin/bash
# data_restore_gaps_segments.sh [NREC] - restoring a backup of a compacted topic
# (offsets with gaps, as SPEC §3 allows: "in a compacted topic it may be any offset
# at or after the next one") makes a new segment file at (nearly) every gap, each
# held open by the daemon, and the segments stay after the restore: a backup with
# tens of thousands of gaps runs the daemon out of descriptors (EMFILE), and every
# restored compacted topic costs a descriptor per gap from then on.
# To show it quickly the daemon runs with a hard limit of 1024 descriptors
# (this machine's default hard limit is 20000: about that many gaps).
# Run from /work/main as root.  SB_BUILD (default build).  NREC default 3000.
set -u
B=$(realpath "${SB_BUILD:-build}")
FS=$B/streambusfs; SB=$B/streambus
N=${1:-3000}
W=/tmp/e11data/repro-gaps
cleanup() { fusermount3 -u "$W/M" 2>/dev/null || umount -l "$W/M" 2>/dev/null; }
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/L" "$W/M" "$W/bk"
# a backup of a compacted topic: records at even offsets (the odd ones compacted away)
python3 - "$W/bk" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    p = '%s/%020d' % (d, 2 * i)
    with open(p, 'wb') as f:
        f.write(b'record %d\n' % (2 * i))
    os.utime(p, ns=(1700000000 * 10**9 + i, 1700000000 * 10**9 + i))
PY
( ulimit -n 1024; nice -n 10 "$FS" -o cleanup=compact "$W/L" "$W/M" 2>"$W/daemon.err" ) || { echo "mount failed"; cat "$W/daemon.err"; exit 2; }
pid=$(pgrep -f "streambusfs -o cleanup=compact $W/L" | head -1)
mkdir "$W/M/r"
echo "restoring $N records with gaps: rsync -a bk/ M/r/"
rsync -a "$W/bk/" "$W/M/r/" 2>"$W/rsync.err"; rc=$?
echo "rsync exit status $rc; $(grep -c 'rename' "$W/rsync.err") renames failed, e.g.: $(grep -m1 rename "$W/rsync.err" | cut -c1-150)"
echo "segment files in LOG_DIR/r: $(ls "$W/L/r" | grep -c '\.seg$'), daemon descriptors: $(ls /proc/$pid/fd | wc -l)"
echo "records restored: $(ls "$W/M/r" | wc -l) of $N"
sleep 3
echo "3 s later: segment files $(ls "$W/L/r" | grep -c '\.seg$')"
echo "daemon log: $(grep -i -m2 'EMFILE\|descriptor\|too many' "$W/daemon.err" | cut -c1-200)"
