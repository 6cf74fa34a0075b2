#!/bin/bash
# `streambus recover LINK` where LINK is a symlink to a topic directory (LOG_DIR/t):
# the tool takes LINK's own parent for LOG_DIR, so it recovers every sibling of the
# link as a topic: it writes a segment, index, time index and clean file into
# LOG_DIR itself and into the (unmounted) MOUNTPOINT, .lock into the parent, and
# prints "log: 00000000000000000000.seg: missing index rebuilt (0 entries)".
# `streambus stat LINK` likewise warns about each sibling ("a mount would recover: no
# segment file"). Same cause as recover_parent_dir.sh. Expected: LOG_DIR taken from
# where the topic is (or the link refused), nothing written outside it.
# Usage: from the worktree root, as root.
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /tmp/ex10rts.XXXXXX)
trap 'fusermount3 -u "$D/mnt" 2>/dev/null; rm -rf "$D"' EXIT
mkdir "$D/log" "$D/mnt"; "$B/streambusfs" -c /dev/null "$D/log" "$D/mnt" || exit 2
mkdir "$D/mnt/t"; seq 3 >> "$D/mnt/t/.log"; fusermount3 -u "$D/mnt"; sleep 1
ln -s log/t "$D/tl"
echo "\$ streambus stat tl"; (cd "$D" && "$B/streambus" stat tl); echo "  exit $?"
touch "$D/stamp"; sleep 0.01
echo "\$ streambus recover tl"; (cd "$D" && "$B/streambus" recover tl); echo "  exit $?"
new=$(cd "$D" && find . -newer stamp -type f | sort | grep -v '^./log/t/' | grep -vx './log/.lock')
echo "files written outside the topic: ${new:-none}" | tr '\n' ' '; echo
[ -n "$new" ] && { echo "BUG: recover of one topic (through a symlink) wrote outside it"; exit 1; }
echo ok
