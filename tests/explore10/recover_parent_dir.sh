#!/bin/bash
# `streambus recover .` run one directory too high (in the parent of LOG_DIR, a slip
# of `cd`) takes LOG_DIR and the unmounted MOUNTPOINT for topics (their names are
# valid topic names) and writes an empty segment, index, time index and clean file
# into each, printing "nothing to recover" and exit 0. Afterwards:
#  - `streambus verify LOG_DIR` checks one empty topic named after LOG_DIR, says ok,
#    exit 0: the real topics are no longer verified;
#  - `streambus stat LOG_DIR TOPIC` is refused (LOG_DIR "holds segment files");
#  - the mount on MOUNTPOINT is refused (not empty).
# Expected: recover refuses a directory that holds no log (README: recover "cuts torn
# or corrupt tails ... printing each change (or `nothing to recover`)"; SPEC §1 "a
# typo never silently creates an empty log"). Run from the worktree root.
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /tmp/ex10rpd.XXXXXX)
trap 'fusermount3 -u "$D/data" 2>/dev/null; fusermount3 -u "$D/mnt" 2>/dev/null; rm -rf "$D"' EXIT
mkdir "$D/data" "$D/mnt"
"$B/streambusfs" -c /dev/null "$D/data" "$D/mnt" || exit 2
mkdir "$D/mnt/orders"; seq 3 >> "$D/mnt/orders/.log"; fusermount3 -u "$D/mnt"; sleep 1
echo "before: streambus verify data:"; (cd "$D" && "$B/streambus" verify data); echo "  exit $?"
echo "\$ cd $D && streambus recover ."; (cd "$D" && "$B/streambus" recover .); echo "  exit $?"
echo "after:"; ls "$D/data" "$D/mnt" | sed 's/^/  /'
echo "\$ streambus verify data"; (cd "$D" && "$B/streambus" verify data); echo "  exit $?"
echo "\$ streambus stat data orders"; (cd "$D" && "$B/streambus" stat data orders); echo "  exit $?"
echo "\$ streambusfs data mnt"; (cd "$D" && "$B/streambusfs" -c /dev/null data mnt); echo "  exit $?"
if [ -e "$D/data/00000000000000000000.seg" ]; then echo "BUG: recover of the parent wrote a segment into LOG_DIR"; exit 1; fi
echo ok
