#!/bin/bash
# streambus recover on a directory that is not a log directory (a typo, a wrong
# path) writes segment, index, time index and clean files into every subdirectory
# whose name could be a topic, creates .lock, and prints "nothing to recover".
# Expected (README: recover "prints each change (or `nothing to recover`)"; SPEC §1
# "a typo never silently creates an empty log"): refuse, or at least report what it
# wrote. Usage: tests/explore10/recover_foreign_dir.sh   (from the worktree root)
B=${SB_BUILD:-build}; B=$(realpath "$B")
D=$(mktemp -d /tmp/ex10rfd.XXXXXX); trap 'rm -rf "$D"' EXIT
mkdir -p "$D/home/photos" "$D/home/.git"; echo a > "$D/home/photos/cat.jpg"
before=$(cd "$D/home" && find . | sort)
"$B/streambus" recover "$D/home"; echo "recover exit status $?"
after=$(cd "$D/home" && find . | sort)
if [ "$before" != "$after" ]; then
  echo "BUG: recover wrote into a directory that held no log:"; diff <(echo "$before") <(echo "$after") | sed -n 's/^> /  new: /p'; exit 1
fi
echo "ok: nothing written"
