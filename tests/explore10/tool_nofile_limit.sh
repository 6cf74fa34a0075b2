#!/bin/bash
# `streambus stat` / `verify` / `dump` on a log directory of more segment files than
# the soft limit of open files (1024, a normal user's default; the hard limit here
# is higher) leave topics out with "Too many open files" and exit 2, while
# `streambusfs` raises its soft limit to the hard one (README: "raises its soft limit
# of open files to the hard limit when it starts") and mounts the same directory.
# Expected: the tool raises its limit as the daemon does (or keeps fewer files open).
# Usage: from the worktree root (any user whose hard limit exceeds 1300).
B=${SB_BUILD:-build}; B=$(realpath "$B")
[ "$(ulimit -Hn)" -gt 1400 ] || { echo "needs a hard limit of open files above 1400 (have $(ulimit -Hn))"; exit 2; }
D=$(mktemp -d /dev/shm/ex10nof.XXXXXX)
trap 'fusermount3 -u "$D/mnt" 2>/dev/null && sleep 1; rm -rf "$D"' EXIT
mkdir "$D/log" "$D/mnt"; "$B/streambusfs" -c /dev/null -o segment_bytes=4096 "$D/log" "$D/mnt" || exit 2
for t in a b c; do
  mkdir "$D/mnt/$t"
  python3 -c "
import os
fd = os.open('$D/mnt/$t/.log', os.O_WRONLY | os.O_APPEND)
for i in range(450):
    os.write(fd, (('rec %d ' % i) + 'x' * 4000 + '\n').encode())
"
done
fusermount3 -u "$D/mnt"; sleep 1
echo "segment files: $(ls "$D"/log/*/*.seg | wc -l); soft limit for the tool: 1024, hard $(ulimit -Hn)"
bug=0
for c in stat verify "dump --raw"; do
  (ulimit -Sn 1024; "$B/streambus" $c "$D/log" > /dev/null 2> "$D/err"); rc=$?
  echo "streambus $c LOG_DIR: exit $rc; $(grep -c 'Too many open files' "$D/err") lines 'Too many open files'; first: $(head -1 "$D/err")"
  grep -q 'Too many open files' "$D/err" && bug=1
done
(ulimit -Sn 1024; "$B/streambusfs" -c /dev/null "$D/log" "$D/mnt") && echo "streambusfs under the same limit: mounted, $(cat "$D"/mnt/*/.log | wc -l) records"
[ $bug = 1 ] && { echo "BUG: the tool fails with EMFILE where the daemon raises its limit"; exit 1; }
echo ok
