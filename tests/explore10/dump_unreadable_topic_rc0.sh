#!/bin/bash
# streambus dump LOG_DIR (every topic), run by a user who cannot read one topic,
# leaves that topic out with a warning and exits 0, so `streambus dump --raw LOG_DIR
# > copy` looks like a success. stat and verify exit 2 on the same directory, and so
# does dump LOG_DIR TOPIC. README: "Exit status: ... 2 usage error, missing directory
# or topic, I/O error". Run as root from the worktree root (uses user 'tester').
B=${SB_BUILD:-build}; B=$(realpath "$B")
id tester >/dev/null 2>&1 || useradd -m tester
D=$(mktemp -d /tmp/ex10dur.XXXXXX); trap 'rm -rf "$D"' EXIT; chmod 755 "$D"
# a log dir with two topics, written through the tool's own format via a mount
mkdir -p "$D/log" "$D/mnt"
"$B/streambusfs" -c /dev/null "$D/log" "$D/mnt" || exit 2
mkdir "$D/mnt/open" "$D/mnt/secret"; echo a >> "$D/mnt/open/.log"; echo b >> "$D/mnt/secret/.log"
fusermount3 -u "$D/mnt"; sleep 1
chmod 700 "$D/log/secret"
for c in "dump" "dump --raw" "dump --json" "stat" "verify"; do
  runuser -u tester -- "$B/streambus" $c "$D/log" >/dev/null 2>"$D/err"; rc=$?
  echo "streambus $c LOG_DIR as tester: exit $rc; stderr: $(head -1 "$D/err")"
done
runuser -u tester -- "$B/streambus" dump "$D/log" >/dev/null 2>&1 && { echo "BUG: dump exited 0 having left a topic out"; exit 1; }
echo ok
