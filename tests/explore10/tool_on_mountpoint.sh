#!/bin/bash
# `streambus` pointed at the MOUNTPOINT instead of LOG_DIR (an easy slip: both are
# "the log"): `dump MNT TOPIC` and `get MNT TOPIC KEY` say "corrupt data (checksum
# or format mismatch)" (exit 2) about a healthy topic; `stat MNT` exits 0 with
# "t  refused: no segment file" and "a mount would recover"; `verify MNT` prints
# "t: ok (0 records ...)". Expected: a line saying MNT is a StreamBus mount (of
# LOG_DIR), not a log directory; never a claim of corrupt data.
# Usage: from the worktree root, as root.
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /dev/shm/ex10tom.XXXXXX)
trap 'fusermount3 -u "$D/mnt" 2>/dev/null; rm -rf "$D"' EXIT
mkdir "$D/log" "$D/mnt"; "$B/streambusfs" -c /dev/null "$D/log" "$D/mnt" || exit 2
mkdir "$D/mnt/t"; seq 3 >> "$D/mnt/t/.log"; echo v > "$D/mnt/t/.keys/k"
bug=0
for c in "stat mnt" "verify mnt" "dump mnt t" "get mnt t k"; do
  (cd "$D" && timeout 20 "$B/streambus" $c > "$D/out" 2> "$D/err"); rc=$?
  echo "\$ streambus $c: exit $rc"; sed 's/^/    /' "$D/out" "$D/err"
  grep -q "corrupt" "$D/err" && bug=1
done
[ $bug = 1 ] && { echo "BUG: a healthy topic reported as corrupt data when the tool is given the mountpoint"; exit 1; }
echo ok
